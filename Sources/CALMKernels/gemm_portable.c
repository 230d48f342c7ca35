/* Portable tile kernels (scalar fmaf, same FMA chain as the SIMD paths). */
#include "internal.h"
#include <math.h>

#define P_MR 4

static inline float ld_w(const void *b, calm_dtype dt, size_t i) {
    switch (dt) {
    case CALM_F16: return calm__f16_to_f32(((const uint16_t *)b)[i]);
    case CALM_BF16: return calm__bf16_to_f32(((const uint16_t *)b)[i]);
    default: return ((const float *)b)[i];
    }
}

static inline void tile_generic(calm_dtype dt, int mr, int kc, const float *x, size_t ldx, const void *b,
                                const float *cin, float *out, size_t ldo, const float *bias, int accumulate,
                                int ncols) {
    float acc[P_MR][CALM_PANEL];
    for (int r = 0; r < mr; r++)
        for (int c = 0; c < CALM_PANEL; c++) acc[r][c] = cin ? cin[r * CALM_PANEL + c] : 0.0f;
    for (int kk = 0; kk < kc; kk++) {
        float w[CALM_PANEL];
        for (int c = 0; c < CALM_PANEL; c++) w[c] = ld_w(b, dt, (size_t)kk * CALM_PANEL + (size_t)c);
        for (int r = 0; r < mr; r++) {
            float xv = x[(size_t)r * ldx + (size_t)kk];
            for (int c = 0; c < CALM_PANEL; c++) acc[r][c] = fmaf(xv, w[c], acc[r][c]);
        }
    }
    for (int r = 0; r < mr; r++) {
        float *o = out + (size_t)r * ldo;
        for (int c = 0; c < ncols; c++) {
            float v = acc[r][c];
            if (bias) v = v + bias[c];
            if (accumulate) v = o[c] + v;
            o[c] = v;
        }
    }
}

static void tile_f32(int mr, int kc, const float *x, size_t ldx, const void *b, const float *cin, float *out,
                     size_t ldo, const float *bias, int accumulate, int ncols) {
    tile_generic(CALM_F32, mr, kc, x, ldx, b, cin, out, ldo, bias, accumulate, ncols);
}
static void tile_f16(int mr, int kc, const float *x, size_t ldx, const void *b, const float *cin, float *out,
                     size_t ldo, const float *bias, int accumulate, int ncols) {
    tile_generic(CALM_F16, mr, kc, x, ldx, b, cin, out, ldo, bias, accumulate, ncols);
}
static void tile_bf16(int mr, int kc, const float *x, size_t ldx, const void *b, const float *cin, float *out,
                      size_t ldo, const float *bias, int accumulate, int ncols) {
    tile_generic(CALM_BF16, mr, kc, x, ldx, b, cin, out, ldo, bias, accumulate, ncols);
}

const calm_gemm_impl calm__gemm_portable = { P_MR, { 256, 256, 256 }, { tile_f32, tile_f16, tile_bf16 }, { NULL, NULL, NULL } };
