/*
 * AVX2 screening kernels (calm_linear_argmax_screened). The integer tile multiplies 7-bit unsigned
 * activations by int8 weights with vpmaddubsw (pairs of products: at most 2 * 127 * 127 = 32258, so the
 * 16-bit sums never saturate), widens the pairs with vpmaddwd against ones and adds them into int32:
 * 32 byte products per two multiply-port instructions, twice the f32 FMA's 16 per two. A panel's k
 * group is 4 bytes per column, so one 32-bit broadcast of the activations meets 8 columns per vector.
 */
#include "internal.h"
#if CALM_X86
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define MR 2 /* 8 accumulators + 4 weight vectors + the broadcast + ones: three rows spill */
#define PF_GROUPS 24 /* k groups (128 bytes each) ahead to prefetch when one row streams the matrix */

#define KERNEL_ATTR CALM_TARGET_AVX2 __attribute__((always_inline)) static inline

KERNEL_ATTR void tile_impl(const int mr, int groups, const uint8_t *v, size_t ldv, const int8_t *panel, int32_t *out,
                           const int pf) {
    __m256i acc[MR][4];
    CALM_UNROLL for (int r = 0; r < mr; r++)
        CALM_UNROLL for (int q = 0; q < 4; q++) acc[r][q] = _mm256_setzero_si256();
    const __m256i ones = _mm256_set1_epi16(1);
    for (int g = 0; g < groups; g++) {
        const int8_t *wp = panel + (size_t)g * 128;
        if (pf) {
            _mm_prefetch((const char *)wp + PF_GROUPS * 128, _MM_HINT_T0);
            _mm_prefetch((const char *)wp + PF_GROUPS * 128 + 64, _MM_HINT_T0);
        }
        CALM_UNROLL for (int r = 0; r < mr; r++) {
            int32_t xv;
            memcpy(&xv, v + (size_t)r * ldv + (size_t)g * 4, 4);
            const __m256i xb = _mm256_set1_epi32(xv);
            CALM_UNROLL for (int q = 0; q < 4; q++) {
                const __m256i w = _mm256_loadu_si256((const __m256i *)(wp + q * 32));
                acc[r][q] = _mm256_add_epi32(acc[r][q], _mm256_madd_epi16(_mm256_maddubs_epi16(xb, w), ones));
            }
        }
    }
    CALM_UNROLL for (int r = 0; r < mr; r++)
        CALM_UNROLL for (int q = 0; q < 4; q++) _mm256_storeu_si256((__m256i *)(out + r * 32 + q * 8), acc[r][q]);
}

CALM_TARGET_AVX2 __attribute__((noinline)) static void tile1(int groups, const uint8_t *v, size_t ldv, const int8_t *panel,
                                                              int32_t *out) {
    tile_impl(1, groups, v, ldv, panel, out, 0);
}
CALM_TARGET_AVX2 __attribute__((noinline)) static void tile1_pf(int groups, const uint8_t *v, size_t ldv, const int8_t *panel,
                                                                 int32_t *out) {
    tile_impl(1, groups, v, ldv, panel, out, 1);
}
CALM_TARGET_AVX2 __attribute__((noinline)) static void tile2(int groups, const uint8_t *v, size_t ldv, const int8_t *panel,
                                                              int32_t *out) {
    tile_impl(2, groups, v, ldv, panel, out, 0);
}

static void tile_avx2(int mr, int groups, const uint8_t *v, size_t ldv, const int8_t *panel, int32_t *out, int pf) {
    if (mr == 1) (pf ? tile1_pf : tile1)(groups, v, ldv, panel, out);
    else tile2(groups, v, ldv, panel, out);
}

/* The bounds of calm__screen_finish_fn, 8 columns per vector (column figures read from L1 per row). */
CALM_TARGET_AVX2 void calm__screen_finish_avx2(int mr, const int32_t *raw, const calm__screen_row *rows,
                                               const calm__screen_cols *cols, int ncols, float *lstar, float *u,
                                               uint32_t *mask, float *l_out) {
    const __m256 e = _mm256_set1_ps(CALM_SCREEN_E), ninf = _mm256_set1_ps(-INFINITY);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int r = 0; r < mr; r++) {
        const calm__screen_row R = rows[r];
        const __m256 s = _mm256_set1_ps(R.s), a = _mm256_set1_ps(R.A), bc = _mm256_set1_ps(R.Bc);
        const __m256i z = _mm256_set1_epi32(R.z), corr = _mm256_set1_epi32(R.corr);
        __m256 hi[4], lmax = ninf;
        CALM_UNROLL for (int q = 0; q < 4; q++) {
            const __m256i raw8 = _mm256_loadu_si256((const __m256i *)(raw + r * 32 + q * 8));
            const __m256i cs = _mm256_loadu_si256((const __m256i *)(cols->colsum + q * 8));
            const __m256i t = _mm256_add_epi32(_mm256_add_epi32(raw8, _mm256_mullo_epi32(z, cs)), corr);
            const __m256 qv = _mm256_mul_ps(_mm256_cvtepi32_ps(t), _mm256_mul_ps(s, _mm256_loadu_ps(cols->sigma + q * 8)));
            const __m256 b = _mm256_fmadd_ps(a, _mm256_loadu_ps(cols->rho + q * 8),
                                             _mm256_fmadd_ps(bc, _mm256_loadu_ps(cols->omega + q * 8), e));
            __m256 h = _mm256_add_ps(qv, b), l = _mm256_sub_ps(qv, b);
            if (ncols < 32) {
                const __m256 valid = _mm256_castsi256_ps(
                    _mm256_cmpgt_epi32(_mm256_set1_epi32(ncols - q * 8), lane));
                h = _mm256_blendv_ps(ninf, h, valid);
                l = _mm256_blendv_ps(ninf, l, valid);
            }
            hi[q] = h;
            lmax = _mm256_max_ps(lmax, l);
            _mm256_storeu_ps(u + r * 32 + q * 8, h);
            if (l_out) _mm256_storeu_ps(l_out + r * 32 + q * 8, l);
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(lmax), _mm256_extractf128_ps(lmax, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
        float ls = _mm_cvtss_f32(m4);
        if (lstar[r] > ls) ls = lstar[r];
        lstar[r] = ls;
        const __m256 lsv = _mm256_set1_ps(ls);
        uint32_t mk = 0;
        CALM_UNROLL for (int q = 0; q < 4; q++)
            mk |= (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(hi[q], lsv, _CMP_GE_OQ)) << (q * 8);
        mask[r] = mk;
    }
}

const calm__screen_impl calm__screen_avx2 = { "avx2", 0, MR, tile_avx2, calm__screen_finish_avx2 };
#endif
