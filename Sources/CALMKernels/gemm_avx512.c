/*
 * AVX-512 tile kernels: up to 12 rows x 32 columns (24 zmm accumulators + 2 weight vectors + 1
 * broadcast of the 32 zmm registers), one FMA per k in increasing order per output element. The
 * row loops are fully unrolled (CALM_UNROLL): without it clang kept the 11- and 12-row tiles'
 * accumulators on the stack, a third of the AVX2 tiles' speed. Weights are widened in registers (bf16: zero-extend and
 * shift left 16; f16: vcvtph2ps).
 */
#include "internal.h"
#if CALM_X86
#include <immintrin.h>

#define MR 12
#define PF_DIST 16 /* k groups ahead to prefetch */

#define KERNEL_ATTR CALM_TARGET_AVX512 __attribute__((always_inline)) static inline

/*
 * acc += broadcast(*p) * w as one instruction with an embedded-broadcast memory operand. Clang
 * would load x once into a register with vbroadcastss and use it for both FMAs, but on Zen 4 a
 * zmm vbroadcastss from memory takes a slot on an FMA pipe (one per two FMAs here); the folded
 * form only uses the load ports (llvm-mca -mcpu=znver4: 24 cycles per k step of a 12-row tile
 * against 36). Same rounding: one fused multiply-add either way.
 */
#define FMA_BROADCAST(acc, w, p) \
    __asm__("vfmadd231ps %[xm]%{1to16%}, %[wv], %[av]" : [av] "+v"(acc) : [wv] "v"(w), [xm] "m"(*(p)))

KERNEL_ATTR void load_w(const int dt, const void *b, int kk, __m512 *w0, __m512 *w1) {
    if (dt == CALM_F32) {
        const float *p = (const float *)b + (size_t)kk * 32;
        *w0 = _mm512_loadu_ps(p);
        *w1 = _mm512_loadu_ps(p + 16);
    } else if (dt == CALM_BF16) {
        const uint16_t *p = (const uint16_t *)b + (size_t)kk * 32;
        *w0 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
        *w1 = _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p + 16))), 16));
    } else {
        const uint16_t *p = (const uint16_t *)b + (size_t)kk * 32;
        *w0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
        *w1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 16)));
    }
}

KERNEL_ATTR void tile_impl(const int dt, const int mr, int kc, const float *x, size_t ldx, const void *b,
                           const float *cin, float *out, size_t ldo, const float *bias, int accumulate, int ncols) {
    __m512 c0[MR], c1[MR];
    if (cin) {
        CALM_UNROLL for (int r = 0; r < mr; r++) {
            c0[r] = _mm512_loadu_ps(cin + r * 32);
            c1[r] = _mm512_loadu_ps(cin + r * 32 + 16);
        }
    } else {
        CALM_UNROLL for (int r = 0; r < mr; r++) {
            c0[r] = _mm512_setzero_ps();
            c1[r] = _mm512_setzero_ps();
        }
    }
    const size_t es = dt == CALM_F32 ? 4 : 2;
    const char *bp = (const char *)b;
    for (int kk = 0; kk < kc; kk++) {
        __m512 w0, w1;
        load_w(dt, b, kk, &w0, &w1);
        _mm_prefetch(bp + (size_t)(kk + PF_DIST) * 32 * es, _MM_HINT_T0);
        if (es == 4) _mm_prefetch(bp + (size_t)(kk + PF_DIST) * 32 * es + 64, _MM_HINT_T0);
        CALM_UNROLL for (int r = 0; r < mr; r++) {
            const float *xr = x + (size_t)r * ldx + (size_t)kk;
            FMA_BROADCAST(c0[r], w0, xr);
            FMA_BROADCAST(c1[r], w1, xr);
        }
    }
    if (ncols == 32 && !bias && !accumulate) {
        CALM_UNROLL for (int r = 0; r < mr; r++) {
            _mm512_storeu_ps(out + (size_t)r * ldo, c0[r]);
            _mm512_storeu_ps(out + (size_t)r * ldo + 16, c1[r]);
        }
        return;
    }
    const __mmask16 m0 = ncols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << ncols) - 1);
    const __mmask16 m1 = ncols >= 32 ? (__mmask16)0xFFFF : ncols > 16 ? (__mmask16)((1u << (ncols - 16)) - 1) : 0;
    __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
    if (bias) {
        b0 = _mm512_maskz_loadu_ps(m0, bias);
        b1 = _mm512_maskz_loadu_ps(m1, bias + 16);
    }
    CALM_UNROLL for (int r = 0; r < mr; r++) {
        float *o = out + (size_t)r * ldo;
        __m512 v0 = c0[r], v1 = c1[r];
        if (bias) {
            v0 = _mm512_add_ps(v0, b0);
            v1 = _mm512_add_ps(v1, b1);
        }
        if (accumulate) {
            v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, o), v0);
            v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, o + 16), v1);
        }
        _mm512_mask_storeu_ps(o, m0, v0);
        _mm512_mask_storeu_ps(o + 16, m1, v1);
    }
}

#define DEFINE_TILE(NAME, DT)                                                                                    \
    CALM_TARGET_AVX512 static void NAME(int mr, int kc, const float *x, size_t ldx, const void *b,             \
                                        const float *cin, float *out, size_t ldo, const float *bias,           \
                                        int accumulate, int ncols) {                                           \
        switch (mr) {                                                                                          \
        case 1: tile_impl(DT, 1, kc, x, ldx, b, cin, out, ldo, bias, accumulate, ncols); break;                \
        case 2: tile_impl(DT, 2, kc, x, ldx, b, cin, out, ldo, bias, accumulate, ncols); break;                \
        case 3: tile_impl(DT, 3, kc, x, ldx, b, cin, out, ldo, bias, accumulate, ncols); break;                \
        case 4: tile_impl(DT, 4, kc, x, ldx, b, cin, out, ldo, bias, accumulate, ncols); break;                \
        case 5: tile_impl(DT, 5, kc, x, ldx, b, cin, out, ldo, bias, accumulate, ncols); break;                \
        case 6: tile_impl(DT, 6, kc, x, ldx, b, cin, out, ldo, bias, accumulate, ncols); break;                \
        case 7: tile_impl(DT, 7, kc, x, ldx, b, cin, out, ldo, bias, accumulate, ncols); break;                \
        case 8: tile_impl(DT, 8, kc, x, ldx, b, cin, out, ldo, bias, accumulate, ncols); break;                \
        case 9: tile_impl(DT, 9, kc, x, ldx, b, cin, out, ldo, bias, accumulate, ncols); break;                \
        case 10: tile_impl(DT, 10, kc, x, ldx, b, cin, out, ldo, bias, accumulate, ncols); break;              \
        case 11: tile_impl(DT, 11, kc, x, ldx, b, cin, out, ldo, bias, accumulate, ncols); break;              \
        default: tile_impl(DT, 12, kc, x, ldx, b, cin, out, ldo, bias, accumulate, ncols); break;              \
        }                                                                                                      \
    }

DEFINE_TILE(tile_f32, CALM_F32)
DEFINE_TILE(tile_f16, CALM_F16)
DEFINE_TILE(tile_bf16, CALM_BF16)

/* one-row decode path: the AVX2 two-panel kernel (same FMA chains, twice the chains of a 1x32 tile) */
const calm_gemm_impl calm__gemm_avx512 = { MR, { 256, 256, 256 }, { tile_f32, tile_f16, tile_bf16 },
                                           { calm__row2_f32_avx2, calm__row2_f16_avx2, calm__row2_bf16_avx2 } };
#endif
