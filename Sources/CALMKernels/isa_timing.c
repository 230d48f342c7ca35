/*
 * Timing of GEMM implementations for the start-up ISA choice (dispatch.c). The multiply is a
 * small many-row product (two full AVX-512 row tiles, four AVX2 ones; K blocked once) in f32 and
 * bf16 weights, the shapes where the tile code decides the speed. About 3 MFLOP per call and
 * dtype; 5 interleaved rounds of 2 calls keep the whole choice to a few milliseconds.
 */
#include "internal.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { T_M = 24, T_K = 512, T_N = 128, T_ROUNDS = 5, T_CALLS = 2 };

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void calm__time_gemm_impls(const calm_gemm_impl *const *impls, int n, double *seconds) {
    for (int i = 0; i < n; i++) seconds[i] = 0;
    float *x = (float *)malloc(sizeof(float) * T_M * T_K);
    float *src = (float *)malloc(sizeof(float) * T_N * T_K);
    float *y = (float *)malloc(sizeof(float) * T_M * T_N);
    calm_matrix w[2] = { { T_N, T_K, CALM_F32, NULL }, { T_N, T_K, CALM_BF16, NULL } };
    w[0].data = malloc(calm_matrix_packed_bytes(T_N, T_K, CALM_F32));
    w[1].data = malloc(calm_matrix_packed_bytes(T_N, T_K, CALM_BF16));
    if (!x || !src || !y || !w[0].data || !w[1].data) goto done; /* no memory: all equal, first wins */
    uint32_t st = 2463534242u;
    for (int i = 0; i < T_M * T_K; i++) { st ^= st << 13; st ^= st >> 17; st ^= st << 5; x[i] = (float)(st >> 8) * 0x1p-24f - 0.5f; }
    for (int i = 0; i < T_N * T_K; i++) { st ^= st << 13; st ^= st >> 17; st ^= st << 5; src[i] = (float)(st >> 8) * 0x1p-24f - 0.5f; }
    for (int d = 0; d < 2; d++) calm_matrix_pack(&w[d], src, CALM_F32, T_K);
    for (int d = 0; d < 2; d++) {
        double best[8];
        const int cap = n < 8 ? n : 8;
        for (int i = 0; i < cap; i++) {
            best[i] = 1e30;
            calm__linear_impl(impls[i], NULL, x, T_M, T_K, &w[d], NULL, y, T_N, 0); /* warm caches */
        }
        for (int round = 0; round < T_ROUNDS; round++)
            for (int i = 0; i < cap; i++) {
                const double t0 = now_seconds();
                for (int c = 0; c < T_CALLS; c++) calm__linear_impl(impls[i], NULL, x, T_M, T_K, &w[d], NULL, y, T_N, 0);
                const double dt = (now_seconds() - t0) / T_CALLS;
                if (dt < best[i]) best[i] = dt;
            }
        for (int i = 0; i < cap; i++) seconds[i] += best[i];
    }
done:
    free(x);
    free(src);
    free(y);
    free(w[0].data);
    free(w[1].data);
}
