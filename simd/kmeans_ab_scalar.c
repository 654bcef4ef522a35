/* Scalar twins of the chroma k-means kernels (the references). */
#include "simd/kmeans_ab.h"

static float distance(float a, float b, const float *c) {
    float da = a - c[0], db = b - c[1];
    return da * da + db * db;
}

static uint8_t nearest_centre(float a, float b, const float *centres, int k) {
    uint8_t best = 0;
    float best_d = 0.0f;
    for (int j = 0; j < k; j++) {
        float d = distance(a, b, centres + 2 * j);
        if (j == 0 || d < best_d) {
            best_d = d;
            best = (uint8_t)j;
        }
    }
    return best;
}

// a, b are (n), centres is (k,2), labels is (n)
void kmeans_nearest_ab_scalar(const float *a, const float *b, size_t n, const float *centres, int k,
                              uint8_t *labels) {
    for (size_t i = 0; i < n; i++)
        labels[i] = nearest_centre(a[i], b[i], centres, k);
}

// lab is (n,3), centres is (k,2), labels is (n)
void kmeans_nearest_lab_scalar(const float *lab, size_t n, const float *centres, int k,
                               uint8_t *labels) {
    for (size_t i = 0; i < n; i++)
        labels[i] = nearest_centre(lab[3 * i + 1], lab[3 * i + 2], centres, k);
}

// the potential's integer squared distance (simd/kmeans_ab.h)
static uint32_t potential_d2(float a, float b, const float *c) {
    float d = distance(a, b, c);
    return (uint32_t)(int32_t)((d < 131072.0f ? d : 131072.0f) * 8192.0f);
}

uint64_t kmeans_ab_potential_scalar(const float *a, const float *b, const uint32_t *weights,
                                    const uint32_t *d2, size_t n, const float *c) {
    uint64_t pot = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t d = potential_d2(a[i], b[i], c);
        pot += (uint64_t)weights[i] * (d < d2[i] ? d : d2[i]);
    }
    return pot;
}

uint64_t kmeans_ab_update_d2_scalar(const float *a, const float *b, const uint32_t *weights,
                                    uint32_t *d2, size_t n, const float *c, int first) {
    uint64_t pot = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t d = potential_d2(a[i], b[i], c);
        if (first || d < d2[i]) d2[i] = d;
        pot += (uint64_t)weights[i] * d2[i];
    }
    return pot;
}
