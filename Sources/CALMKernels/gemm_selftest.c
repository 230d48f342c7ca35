/* Bit-for-bit self-check of SIMD GEMM tiles against the portable ones. */
#include "internal.h"
#include <string.h>

/*
 * Start-up self-check (run once by the ISA detection on AVX-512 machines, whose tiles cannot be
 * exercised on AVX2-only CI machines): a SIMD implementation's tiles must reproduce the portable
 * tiles bit for bit (same FMA chains) on every tile height, partial sums, bias, accumulate and
 * partial column counts. Returns 1 when they do.
 */
int calm__gemm_selftest(const calm_gemm_impl *impl) {
    enum { K = 37, LDX = 41, ROWS = 12 };
    static float x[ROWS * LDX], cin[ROWS * 32], bias[32];
    static float panel32[K * 32];
    static uint16_t panel16[2][K * 32];
    static float ya[ROWS * 32], yb[ROWS * 32];
    uint32_t st = 12345;
    for (int i = 0; i < ROWS * LDX; i++) { st = st * 1664525u + 1013904223u; x[i] = (float)((int)(st >> 9) - (1 << 22)) / (float)(1 << 22); }
    for (int i = 0; i < ROWS * 32; i++) { st = st * 1664525u + 1013904223u; cin[i] = (float)((int)(st >> 9) - (1 << 22)) / (float)(1 << 20); }
    for (int i = 0; i < 32; i++) bias[i] = (float)i * 0.37f - 5.0f;
    for (int i = 0; i < K * 32; i++) {
        st = st * 1664525u + 1013904223u;
        float v = (float)((int)(st >> 9) - (1 << 22)) / (float)(1 << 22);
        panel32[i] = v;
        panel16[0][i] = calm__f32_to_f16(v);
        panel16[1][i] = calm__f32_to_bf16(v);
    }
    for (int dt = 0; dt < 3; dt++) {
        const void *b = dt == CALM_F32 ? (const void *)panel32 : dt == CALM_F16 ? (const void *)panel16[0] : (const void *)panel16[1];
        for (int mr = 1; mr <= ROWS; mr++)
            for (int variant = 0; variant < 4; variant++) {
                const float *ci = variant & 1 ? cin : NULL;
                const float *bi = variant & 2 ? bias : NULL;
                const int acc = variant == 3, nc = variant == 0 ? 32 : variant == 1 ? 32 : variant == 2 ? 17 : 9;
                for (int i = 0; i < ROWS * 32; i++) ya[i] = yb[i] = (float)i;
                if (mr > impl->mr) break;
                impl->tile[dt](mr, K, x, LDX, b, ci, ya, 32, bi, acc, nc);
                for (int r0 = 0; r0 < mr; r0 += calm__gemm_portable.mr) {
                    const int h = mr - r0 < calm__gemm_portable.mr ? mr - r0 : calm__gemm_portable.mr;
                    calm__gemm_portable.tile[dt](h, K, x + r0 * LDX, LDX, b, ci ? ci + r0 * 32 : NULL, yb + r0 * 32, 32,
                                                 bi, acc, nc);
                }
                if (memcmp(ya, yb, sizeof ya) != 0) return 0;
                /* the streaming tiles (prefetching some lines, or none) compute the same */
                if (impl->tile_pf[dt]) {
                    for (int lines = 0; lines <= 5; lines += 5) {
                        for (int i = 0; i < ROWS * 32; i++) ya[i] = (float)i;
                        impl->tile_pf[dt](mr, K, x, LDX, b, ci, ya, 32, bi, acc, nc, panel32, lines);
                        if (memcmp(ya, yb, sizeof ya) != 0) return 0;
                    }
                }
            }
    }
    return 1;
}

