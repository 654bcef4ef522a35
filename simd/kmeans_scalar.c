/* Scalar twins of the k-means kernels (the references). */
#include "simd/kmeans.h"

static uint8_t nearest_centre(float r, float g, float b, const float *centres, int k) {
    uint8_t best = 0;
    float best_d = 0.0f;
    for (int j = 0; j < k; j++) {
        const float *c = centres + 3 * j;
        float dr = r - c[0], dg = g - c[1], db = b - c[2];
        float d = (dr * dr + dg * dg) + db * db;
        if (j == 0 || d < best_d) {
            best_d = d;
            best = (uint8_t)j;
        }
    }
    return best;
}

// colours is (n) 0x00RRGGBB, centres is (k,3), labels is (n)
void kmeans_nearest_scalar(const uint32_t *colours, size_t n, const float *centres, int k,
                           uint8_t *labels) {
    for (size_t i = 0; i < n; i++) {
        uint32_t c = colours[i];
        labels[i] = nearest_centre((float)((c >> 16) & 255), (float)((c >> 8) & 255),
                                   (float)(c & 255), centres, k);
    }
}

// rgb is (n,3), centres is (k,3), labels is (n)
void kmeans_nearest_rgb_scalar(const uint8_t *rgb, size_t n, const float *centres, int k,
                               uint8_t *labels) {
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = rgb + 3 * i;
        labels[i] = nearest_centre((float)p[0], (float)p[1], (float)p[2], centres, k);
    }
}

static uint32_t dist2_packed(uint32_t a, uint32_t b) {
    int dr = (int)(a >> 16 & 255) - (int)(b >> 16 & 255);
    int dg = (int)(a >> 8 & 255) - (int)(b >> 8 & 255);
    int db = (int)(a & 255) - (int)(b & 255);
    return (uint32_t)(dr * dr + dg * dg + db * db);
}

uint64_t kmeans_potential_scalar(const uint32_t *colours, const uint32_t *weights,
                                 const uint32_t *d2, size_t n, uint32_t c) {
    uint64_t pot = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t d = dist2_packed(colours[i], c);
        pot += (uint64_t)weights[i] * (d < d2[i] ? d : d2[i]);
    }
    return pot;
}

uint64_t kmeans_update_d2_scalar(const uint32_t *colours, const uint32_t *weights, uint32_t *d2,
                                 size_t n, uint32_t c, int first) {
    uint64_t pot = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t d = dist2_packed(colours[i], c);
        if (first || d < d2[i]) d2[i] = d;
        pot += (uint64_t)weights[i] * d2[i];
    }
    return pot;
}
