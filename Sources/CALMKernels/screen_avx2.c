/*
 * AVX2 screening kernels (calm_linear_argmax_screened). The integer tile multiplies 7-bit unsigned
 * activations (0..127) by 7-bit weights (|q| <= 64) with vpmaddubsw (pairs of byte products in 16 bits),
 * adds the results of two k groups in 16 bits (at most 2 * 2 * 127 * 64 = 32512: no saturation), widens
 * them with vpmaddwd against ones and adds into int32: 64 byte products per three multiply-port
 * instructions, 2.7 times the f32 FMA's 16 per two. A panel's k group is 4 bytes per column, so one
 * 32-bit broadcast of a row's activations meets 8 columns per vector.
 */
#include "internal.h"
#if CALM_X86
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define MR 2 /* 8 accumulators + broadcasts, products and ones; weights come from L1 as memory operands */
#define PF_GROUPS 24 /* k groups (128 bytes each) ahead to prefetch when one row streams the matrix */

#define KERNEL_ATTR CALM_TARGET_AVX2 __attribute__((always_inline)) static inline

/* the 4 bytes of group g of row r, broadcast */
KERNEL_ATTR __m256i bcast(const uint8_t *v, size_t ldv, int r, int g) {
    int32_t xv;
    memcpy(&xv, v + (size_t)r * ldv + (size_t)g * 4, 4);
    return _mm256_set1_epi32(xv);
}

/* vpmaddubsw with the weights as its memory operand: clang would otherwise keep both groups' 8 weight
   vectors in registers across the rows and spill accumulators (16 ymm registers in all) */
KERNEL_ATTR __m256i maddubs_mem(__m256i x, const int8_t *w) {
    __m256i r;
    __asm__("vpmaddubsw %[w], %[x], %[r]" : [r] "=x"(r) : [x] "x"(x), [w] "m"(*(const __m256i *)(const void *)w));
    return r;
}

KERNEL_ATTR void tile_impl(const int mr, int groups, const uint8_t *v, size_t ldv, const int8_t *panel, int32_t *out,
                           const int pf) {
    __m256i acc[MR][4];
    CALM_UNROLL for (int r = 0; r < mr; r++)
        CALM_UNROLL for (int q = 0; q < 4; q++) acc[r][q] = _mm256_setzero_si256();
    const __m256i ones = _mm256_set1_epi16(1);
    int g = 0;
    for (; g + 1 < groups; g += 2) {
        const int8_t *wp = panel + (size_t)g * 128;
        if (pf)
            for (int l = 0; l < 4; l++) _mm_prefetch((const char *)wp + PF_GROUPS * 128 + l * 64, _MM_HINT_T0);
        CALM_UNROLL for (int r = 0; r < mr; r++) {
            const __m256i x0 = bcast(v, ldv, r, g), x1 = bcast(v, ldv, r, g + 1);
            CALM_UNROLL for (int q = 0; q < 4; q++) {
                const __m256i p0 = maddubs_mem(x0, wp + q * 32);
                const __m256i p1 = maddubs_mem(x1, wp + 128 + q * 32);
                acc[r][q] = _mm256_add_epi32(acc[r][q], _mm256_madd_epi16(_mm256_add_epi16(p0, p1), ones));
            }
        }
    }
    if (g < groups) { /* an odd group count: the last group alone */
        const int8_t *wp = panel + (size_t)g * 128;
        CALM_UNROLL for (int r = 0; r < mr; r++) {
            const __m256i x0 = bcast(v, ldv, r, g);
            CALM_UNROLL for (int q = 0; q < 4; q++) {
                const __m256i p0 = _mm256_maddubs_epi16(x0, _mm256_loadu_si256((const __m256i *)(wp + q * 32)));
                acc[r][q] = _mm256_add_epi32(acc[r][q], _mm256_madd_epi16(p0, ones));
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

/*
 * The bounds of calm__screen_finish_fn, 8 columns per vector. Most (row, panel) pairs hold no candidate
 * once the row's best lower bound has settled: q alone is computed first, and the panel is bounded as a
 * whole with B_max (rho_max, omega_max, the same operations as a column's B, so B_max >= every B as a
 * float); only when max q + B_max reaches lstar are the columns' own bounds computed.
 */
CALM_TARGET_AVX2 void calm__screen_finish_avx2(int mr, const int32_t *raw, const calm__screen_row *rows,
                                               const calm__screen_cols *cols, int ncols, float *lstar, float *u,
                                               uint32_t *mask, float *l_out) {
    const __m256 e = _mm256_set1_ps(CALM_SCREEN_E), ninf = _mm256_set1_ps(-INFINITY);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256 rmax = _mm256_set1_ps(cols->rho_max), omax = _mm256_set1_ps(cols->omega_max);
    for (int r = 0; r < mr; r++) {
        const calm__screen_row R = rows[r];
        const __m256 s = _mm256_set1_ps(R.s), a = _mm256_set1_ps(R.A), bc = _mm256_set1_ps(R.Bc);
        const __m256i z = _mm256_set1_epi32(R.z), corr = _mm256_set1_epi32(R.corr);
        __m256 qv[4], qmax = ninf;
        CALM_UNROLL for (int q = 0; q < 4; q++) {
            const __m256i raw8 = _mm256_loadu_si256((const __m256i *)(raw + r * 32 + q * 8));
            const __m256i cs = _mm256_loadu_si256((const __m256i *)(cols->colsum + q * 8));
            const __m256i t = _mm256_add_epi32(_mm256_add_epi32(raw8, _mm256_mullo_epi32(z, cs)), corr);
            __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(t), _mm256_mul_ps(s, _mm256_loadu_ps(cols->sigma + q * 8)));
            if (ncols < 32)
                v = _mm256_blendv_ps(ninf, v, _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(ncols - q * 8), lane)));
            qv[q] = v;
            qmax = _mm256_max_ps(qmax, v);
        }
        /* the panel as a whole: B_max, the weak lower bound max q - B_max and the pre-test max q + B_max */
        const __m256 bmax = _mm256_fmadd_ps(a, rmax, _mm256_fmadd_ps(bc, omax, e));
        __m256 m8 = _mm256_max_ps(qmax, _mm256_permute2f128_ps(qmax, qmax, 1));
        m8 = _mm256_max_ps(m8, _mm256_shuffle_ps(m8, m8, 0x4E));
        m8 = _mm256_max_ps(m8, _mm256_shuffle_ps(m8, m8, 0xB1)); /* max q in every lane */
        float ls = _mm_cvtss_f32(_mm256_castps256_ps128(_mm256_sub_ps(m8, bmax)));
        if (lstar[r] > ls) ls = lstar[r];
        if (!l_out && _mm_cvtss_f32(_mm256_castps256_ps128(_mm256_add_ps(m8, bmax))) < ls) {
            lstar[r] = ls;
            mask[r] = 0;
            continue;
        }
        __m256 hi[4], lmax = ninf;
        CALM_UNROLL for (int q = 0; q < 4; q++) {
            const __m256 b = _mm256_fmadd_ps(a, _mm256_loadu_ps(cols->rho + q * 8),
                                             _mm256_fmadd_ps(bc, _mm256_loadu_ps(cols->omega + q * 8), e));
            __m256 h = _mm256_add_ps(qv[q], b), l = _mm256_sub_ps(qv[q], b); /* -inf past ncols */
            hi[q] = h;
            lmax = _mm256_max_ps(lmax, l);
            _mm256_storeu_ps(u + r * 32 + q * 8, h);
            if (l_out) _mm256_storeu_ps(l_out + r * 32 + q * 8, l);
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(lmax), _mm256_extractf128_ps(lmax, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
        if (_mm_cvtss_f32(m4) > ls) ls = _mm_cvtss_f32(m4);
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
