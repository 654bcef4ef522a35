/* bin2c IN OUT: writes IN's bytes as a C initialiser list ("12,34,...", 20
 * a line) to OUT, for builtin_model.c to #include. The build runs it on the
 * build machine, so it uses nothing but the C library (and the Makefile
 * builds it with HOSTCC, not the target's compiler). OUT is written under a
 * temporary name and renamed, so a failed run leaves no half list behind
 * that make would take as up to date. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: bin2c IN OUT\n");
        return 2;
    }
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", argv[2]) >= (int)sizeof tmp) {
        fprintf(stderr, "bin2c: %s: name too long\n", argv[2]);
        return 2;
    }
    FILE *in = fopen(argv[1], "rb");
    if (!in) {
        perror(argv[1]);
        return 1;
    }
    FILE *out = fopen(tmp, "w");
    if (!out) {
        perror(tmp);
        fclose(in);
        return 1;
    }
    long n = 0;
    int c;
    while ((c = getc(in)) != EOF)
        fprintf(out, "%d,%s", c, ++n % 20 ? "" : "\n");
    if (n % 20) fputc('\n', out);
    if (n == 0) fprintf(stderr, "bin2c: %s is empty\n", argv[1]);
    int failed = ferror(in) || ferror(out) || n == 0;
    fclose(in);
    if (fclose(out) != 0 || failed || rename(tmp, argv[2]) != 0) {
        if (!failed) perror(argv[2]);
        remove(tmp);
        return 1;
    }
    return 0;
}
