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
#define PF_GROUPS 24 /* k groups (128 bytes each) ahead to prefetch when a few rows stream the matrix */

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
CALM_TARGET_AVX2 __attribute__((noinline)) static void tile2_pf(int groups, const uint8_t *v, size_t ldv, const int8_t *panel,
                                                                 int32_t *out) {
    tile_impl(2, groups, v, ldv, panel, out, 1);
}

static void tile_avx2(int mr, int groups, const uint8_t *v, size_t ldv, const int8_t *panel, int32_t *out, int pf) {
    if (mr == 1) (pf ? tile1_pf : tile1)(groups, v, ldv, panel, out);
    else (pf ? tile2_pf : tile2)(groups, v, ldv, panel, out);
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

/* ---- row quantisation (see internal.h) */

CALM_TARGET_AVX2 static inline double hsum_pd(__m256d v) {
    const __m128d a = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(a, _mm_unpackhi_pd(a, a)));
}

CALM_TARGET_AVX2 int calm__screen_scan_avx2(const float *x, int32_t k, float *lo_out, float *hi_out, double *x2_out) {
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int32_t i = 0;
    for (; i + 8 <= k; i += 8) {
        const __m256 f = _mm256_loadu_ps(x + i);
        lo = _mm256_min_ps(lo, f);
        hi = _mm256_max_ps(hi, f);
        bad = _mm256_add_ps(bad, _mm256_sub_ps(f, f)); /* NaN once an element is inf or NaN */
        const __m256d d0 = _mm256_cvtps_pd(_mm256_castps256_ps128(f)), d1 = _mm256_cvtps_pd(_mm256_extractf128_ps(f, 1));
        s0 = _mm256_fmadd_pd(d0, d0, s0);
        s1 = _mm256_fmadd_pd(d1, d1, s1);
    }
    float l8[8], h8[8], b8[8];
    _mm256_storeu_ps(l8, lo);
    _mm256_storeu_ps(h8, hi);
    _mm256_storeu_ps(b8, bad);
    float l = 0, h = 0, b = 0;
    for (int j = 0; j < 8; j++) {
        l = l8[j] < l ? l8[j] : l;
        h = h8[j] > h ? h8[j] : h;
        b += b8[j];
    }
    double x2 = hsum_pd(_mm256_add_pd(s0, s1));
    for (; i < k; i++) {
        const float f = x[i];
        l = f < l ? f : l;
        h = f > h ? f : h;
        b += f - f;
        x2 += (double)f * (double)f;
    }
    *lo_out = l;
    *hi_out = h;
    *x2_out = x2;
    return b == b;
}

CALM_TARGET_AVX2 void calm__screen_quant_avx2(const float *x, int32_t k, float s, int32_t z, int32_t vmin, uint8_t *v,
                                              double *xt2_out, double *r2_out, int64_t *sumv_out) {
    const __m256 inv = _mm256_set1_ps(1.0f / s), zf = _mm256_set1_ps((float)z);
    const __m256 vlo = _mm256_set1_ps((float)vmin), vhi = _mm256_set1_ps(127.0f);
    const __m256d sd = _mm256_set1_pd((double)s), zd = _mm256_set1_pd((double)z);
    __m256d xt2 = _mm256_setzero_pd(), r2 = _mm256_setzero_pd();
    __m256i sumv = _mm256_setzero_si256();
    int32_t i = 0;
    for (; i + 8 <= k; i += 8) {
        const __m256 f = _mm256_loadu_ps(x + i);
        /* any rounding to the grid is valid: the residual below is measured in double */
        const __m256 q = _mm256_min_ps(_mm256_max_ps(_mm256_fmsub_ps(f, inv, zf), vlo), vhi);
        const __m256i t = _mm256_cvtps_epi32(q);
        sumv = _mm256_add_epi32(sumv, t);
        const __m128i t0 = _mm256_castsi256_si128(t), t1 = _mm256_extracti128_si256(t, 1);
        const __m128i p16 = _mm_packs_epi32(t0, t1);
        _mm_storel_epi64((__m128i *)(void *)(v + i), _mm_packs_epi16(p16, p16));
        for (int h = 0; h < 2; h++) {
            const __m256d d = _mm256_cvtps_pd(h ? _mm256_extractf128_ps(f, 1) : _mm256_castps256_ps128(f));
            const __m256d xt = _mm256_mul_pd(sd, _mm256_add_pd(_mm256_cvtepi32_pd(h ? t1 : t0), zd)); /* exact */
            const __m256d r = _mm256_sub_pd(d, xt);
            xt2 = _mm256_fmadd_pd(xt, xt, xt2);
            r2 = _mm256_fmadd_pd(r, r, r2);
        }
    }
    int32_t s8[8];
    _mm256_storeu_si256((__m256i *)(void *)s8, sumv);
    int64_t sv = 0;
    for (int j = 0; j < 8; j++) sv += s8[j];
    double a = hsum_pd(xt2), b = hsum_pd(r2);
    for (; i < k; i++) {
        float q = x[i] * (1.0f / s) - (float)z;
        q = q < (float)vmin ? (float)vmin : q > 127.0f ? 127.0f : q;
        const int32_t t = (int32_t)lrintf(q);
        v[i] = (uint8_t)(int8_t)t;
        const double xt = (double)s * ((double)t + (double)z), r = (double)x[i] - xt;
        a += xt * xt;
        b += r * r;
        sv += t;
    }
    *xt2_out = a;
    *r2_out = b;
    *sumv_out = sv;
}

/* ---- building a panel (see internal.h) */

CALM_TARGET_AVX2 int calm__screen_build_panel_avx2(const float *buf, int32_t k, int cols, int8_t *panel, float *sigma,
                                                   int32_t *colsum, float *w2_out, float *r2_out) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 mx[4], bad[4], w2[4];
    for (int q = 0; q < 4; q++) { mx[q] = _mm256_setzero_ps(); bad[q] = _mm256_setzero_ps(); w2[q] = _mm256_setzero_ps(); }
    for (int32_t kk = 0; kk < k; kk++)
        for (int q = 0; q < 4; q++) {
            const __m256 v = _mm256_loadu_ps(buf + (size_t)kk * 32 + q * 8);
            mx[q] = _mm256_max_ps(mx[q], _mm256_andnot_ps(sign, v));
            bad[q] = _mm256_add_ps(bad[q], _mm256_sub_ps(v, v)); /* NaN once a value is inf or NaN */
            w2[q] = _mm256_fmadd_ps(v, v, w2[q]);
        }
    float m32[32], b32[32];
    for (int q = 0; q < 4; q++) {
        _mm256_storeu_ps(m32 + q * 8, mx[q]);
        _mm256_storeu_ps(b32 + q * 8, bad[q]);
        _mm256_storeu_ps(w2_out + q * 8, w2[q]);
    }
    for (int c = 0; c < 32; c++) {
        if (b32[c] != b32[c]) return 0;
        /* rows below 2^-40 keep q = 0: all of w is residual (keeps sigma * step products normal) */
        sigma[c] = c < cols && m32[c] >= 0x1p-40f ? m32[c] * (1.0f / CALM_SCREEN_QMAX) : 0.0f; /* exact: a power of 2 */
    }
    __m256 sig[4], inv[4], r2[4];
    __m256i cs[4];
    for (int q = 0; q < 4; q++) {
        sig[q] = _mm256_loadu_ps(sigma + q * 8);
        inv[q] = _mm256_and_ps(_mm256_div_ps(_mm256_set1_ps(1.0f), sig[q]), _mm256_cmp_ps(sig[q], _mm256_setzero_ps(), _CMP_GT_OQ));
        r2[q] = _mm256_setzero_ps();
        cs[q] = _mm256_setzero_si256();
    }
    const __m256 qmax = _mm256_set1_ps((float)CALM_SCREEN_QMAX), qmin = _mm256_set1_ps(-(float)CALM_SCREEN_QMAX);
    const __m256i byte = _mm256_set1_epi32(0xFF);
    memset(panel, 0, (size_t)((k + 3) / 4) * 128);
    for (int32_t g = 0; g * 4 < k; g++) {
        __m256i packed[4];
        for (int q = 0; q < 4; q++) packed[q] = _mm256_setzero_si256();
        for (int b = 0; b < 4 && g * 4 + b < k; b++) {
            const float *row = buf + (size_t)(g * 4 + b) * 32;
            for (int q = 0; q < 4; q++) {
                const __m256 v = _mm256_loadu_ps(row + q * 8);
                /* any rounding to the grid is valid: the residual is measured */
                const __m256i qi = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(v, inv[q]), qmin), qmax));
                const __m256 r = _mm256_fnmadd_ps(sig[q], _mm256_cvtepi32_ps(qi), v); /* v - sigma q, rounded once */
                r2[q] = _mm256_fmadd_ps(r, r, r2[q]);
                cs[q] = _mm256_add_epi32(cs[q], qi);
                packed[q] = _mm256_or_si256(packed[q], _mm256_slli_epi32(_mm256_and_si256(qi, byte), 8 * b));
            }
        }
        /* column c's 4 bytes (k = 4g .. 4g + 3) are one 32-bit lane: the panel's layout */
        for (int q = 0; q < 4; q++) _mm256_storeu_si256((__m256i *)(void *)(panel + (size_t)g * 128 + q * 32), packed[q]);
    }
    for (int q = 0; q < 4; q++) {
        _mm256_storeu_ps(r2_out + q * 8, r2[q]);
        _mm256_storeu_si256((__m256i *)(void *)(colsum + q * 8), cs[q]);
    }
    return 1;
}

const calm__screen_impl calm__screen_avx2 = { "avx2", 0, MR, tile_avx2, calm__screen_finish_avx2 };
#endif
