/*
 * AVX2 tile kernels. Sixteen ymm registers: a 32-column panel is computed as two 16-column halves
 * with up to 6 rows each (12 accumulators + 2 weight vectors + 1 broadcast); one or two rows use a
 * single full-width pass so the panel streams once. One FMA per k in increasing order per element.
 */
#include "internal.h"
#if CALM_X86
#include <immintrin.h>

#define MR 6
#define PF_DIST 24 /* k groups ahead to prefetch */

#define KERNEL_ATTR CALM_TARGET_AVX2 __attribute__((always_inline)) static inline

/* 8 weights at group kk, columns [c0, c0 + 8), widened to f32 */
KERNEL_ATTR __m256 load_w8(const int dt, const void *b, int kk, int c0) {
    const size_t off = (size_t)kk * 32 + (size_t)c0;
    if (dt == CALM_F32) return _mm256_loadu_ps((const float *)b + off);
    const __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)b + off));
    if (dt == CALM_BF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
}

/* finalize nv (= 8 * count) columns of one row from v[] into o */
KERNEL_ATTR void store_row(const __m256 *v, int nvec, float *o, const float *bias, int accumulate, int ncols) {
    if (ncols >= nvec * 8) {
        for (int q = 0; q < nvec; q++) {
            __m256 t = v[q];
            if (bias) t = _mm256_add_ps(t, _mm256_loadu_ps(bias + q * 8));
            if (accumulate) t = _mm256_add_ps(_mm256_loadu_ps(o + q * 8), t);
            _mm256_storeu_ps(o + q * 8, t);
        }
        return;
    }
    float tmp[32];
    for (int q = 0; q < nvec; q++) _mm256_storeu_ps(tmp + q * 8, v[q]);
    for (int c = 0; c < ncols; c++) {
        float t = tmp[c];
        if (bias) t = t + bias[c];
        if (accumulate) t = o[c] + t;
        o[c] = t;
    }
}

/* bf16: 16 weights from one 32-byte load, as even columns (shift) and odd columns (mask) */
KERNEL_ATTR void load_bf16_eo(const uint16_t *p, __m256 *even, __m256 *odd) {
    __m256i v = _mm256_loadu_si256((const __m256i *)p);
    *even = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    *odd = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32((int)0xFFFF0000u)));
}

/* even/odd column vectors back to natural order: (E, O) -> columns [0,8) and [8,16) */
KERNEL_ATTR void eo_to_natural(__m256 e, __m256 o, __m256 *lo8, __m256 *hi8) {
    __m256 a = _mm256_unpacklo_ps(e, o), b = _mm256_unpackhi_ps(e, o);
    *lo8 = _mm256_permute2f128_ps(a, b, 0x20);
    *hi8 = _mm256_permute2f128_ps(a, b, 0x31);
}

/* natural columns [0,8) and [8,16) -> even/odd column vectors (inverse of eo_to_natural) */
KERNEL_ATTR void natural_to_eo(__m256 lo8, __m256 hi8, __m256 *e, __m256 *o) {
    *e = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo8, hi8, 0x88)), 0xD8));
    *o = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo8, hi8, 0xDD)), 0xD8));
}

/*
 * Prefetch of the weights the next tile calls will need (the driver's streaming path for products
 * with few rows): every k step prefetches the line at p and advances p by `inc` bytes, so that
 * kc * inc bytes of the next block are requested, spread evenly over the FMAs of this one instead
 * of stalling the first pass over it. One prefetch and one add per k step, no branch (a test inside
 * the k loop made clang store the accumulators every iteration). inc 0 re-touches one line.
 */
typedef struct { const char *p; size_t inc; } pf_stream;

/* rows [0, mr) x 16 columns starting at column c0 of the panel */
KERNEL_ATTR void half_impl(const int dt, const int mr, int c0, int kc, const float *x, size_t ldx, const void *b,
                           const float *cin, float *out, size_t ldo, const float *bias, int accumulate, int ncols,
                           const int use_pf, const pf_stream *pf) {
    /* bf16 keeps even / odd columns in acc[r][0] / acc[r][1] (cheaper widening), reordered at the end */
    __m256 acc[MR][2];
    CALM_UNROLL for (int r = 0; r < mr; r++)
        for (int q = 0; q < 2; q++)
            acc[r][q] = cin ? _mm256_loadu_ps(cin + r * 32 + c0 + q * 8) : _mm256_setzero_ps();
    if (dt == CALM_BF16 && cin)
        for (int r = 0; r < mr; r++) natural_to_eo(acc[r][0], acc[r][1], &acc[r][0], &acc[r][1]);
    const size_t es = dt == CALM_F32 ? 4 : 2;
    const char *bp = (const char *)b;
    const char *pfp = use_pf ? pf->p : NULL;
    const size_t pfi = use_pf ? pf->inc : 0;
    for (int kk = 0; kk < kc; kk++) {
        __m256 w0, w1;
        if (dt == CALM_BF16) load_bf16_eo((const uint16_t *)b + (size_t)kk * 32 + c0, &w0, &w1);
        else { w0 = load_w8(dt, b, kk, c0); w1 = load_w8(dt, b, kk, c0 + 8); }
        _mm_prefetch(bp + ((size_t)(kk + PF_DIST) * 32 + (size_t)c0) * es, _MM_HINT_T0);
        if (use_pf) { _mm_prefetch(pfp, _MM_HINT_T1); pfp += pfi; }
        CALM_UNROLL for (int r = 0; r < mr; r++) {
            __m256 a = _mm256_broadcast_ss(x + (size_t)r * ldx + (size_t)kk);
            acc[r][0] = _mm256_fmadd_ps(a, w0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(a, w1, acc[r][1]);
        }
    }
    int nc = ncols - c0;
    if (nc <= 0) return;
    if (dt == CALM_BF16)
        for (int r = 0; r < mr; r++) eo_to_natural(acc[r][0], acc[r][1], &acc[r][0], &acc[r][1]);
    for (int r = 0; r < mr; r++)
        store_row(acc[r], 2, out + (size_t)r * ldo + c0, bias ? bias + c0 : NULL, accumulate, nc > 16 ? 16 : nc);
}

/* rows [0, mr) (mr <= 2) x all 32 columns in one pass */
KERNEL_ATTR void full_impl(const int dt, const int mr, int kc, const float *x, size_t ldx, const void *b,
                           const float *cin, float *out, size_t ldo, const float *bias, int accumulate, int ncols,
                           const int use_pf, const pf_stream *pf) {
    __m256 acc[2][4];
    for (int r = 0; r < mr; r++)
        for (int q = 0; q < 4; q++) acc[r][q] = cin ? _mm256_loadu_ps(cin + r * 32 + q * 8) : _mm256_setzero_ps();
    const size_t es = dt == CALM_F32 ? 4 : 2;
    const char *bp = (const char *)b;
    const char *pfp = use_pf ? pf->p : NULL;
    const size_t pfi = use_pf ? pf->inc : 0;
    for (int kk = 0; kk < kc; kk++) {
        __m256 w[4];
        for (int q = 0; q < 4; q++) w[q] = load_w8(dt, b, kk, q * 8);
        _mm_prefetch(bp + (size_t)(kk + PF_DIST) * 32 * es, _MM_HINT_T0);
        if (es == 4) _mm_prefetch(bp + (size_t)(kk + PF_DIST) * 32 * es + 64, _MM_HINT_T0);
        if (use_pf) { _mm_prefetch(pfp, _MM_HINT_T1); pfp += pfi; }
        for (int r = 0; r < mr; r++) {
            __m256 a = _mm256_broadcast_ss(x + (size_t)r * ldx + (size_t)kk);
            for (int q = 0; q < 4; q++) acc[r][q] = _mm256_fmadd_ps(a, w[q], acc[r][q]);
        }
    }
    for (int r = 0; r < mr; r++) store_row(acc[r], 4, out + (size_t)r * ldo, bias, accumulate, ncols);
}

KERNEL_ATTR void tile_impl(const int dt, const int mr, int kc, const float *x, size_t ldx, const void *b,
                           const float *cin, float *out, size_t ldo, const float *bias, int accumulate, int ncols,
                           const int use_pf, const void *pf, int pf_lines) {
    /* pf_lines lines from pf: split between the two halves, each spreading its share over kc steps */
    pf_stream s, *ps = NULL;
    if (use_pf) {
        ps = &s;
        s.p = pf_lines > 0 ? (const char *)pf : (const char *)b;
        s.inc = 0;
    }
    if (mr <= 2) {
        if (ps && pf_lines > 0) s.inc = ((size_t)pf_lines * 64 + (size_t)kc - 1) / (size_t)kc;
        full_impl(dt, mr <= 2 ? mr : 2, kc, x, ldx, b, cin, out, ldo, bias, accumulate, ncols, use_pf, ps);
    } else {
        const int l0 = pf_lines / 2;
        if (ps && pf_lines > 0) s.inc = ((size_t)l0 * 64 + (size_t)kc - 1) / (size_t)kc;
        half_impl(dt, mr, 0, kc, x, ldx, b, cin, out, ldo, bias, accumulate, ncols, use_pf, ps);
        if (ps && pf_lines > 0) {
            s.p = (const char *)pf + (size_t)l0 * 64;
            s.inc = ((size_t)(pf_lines - l0) * 64 + (size_t)kc - 1) / (size_t)kc;
        }
        half_impl(dt, mr, 16, kc, x, ldx, b, cin, out, ldo, bias, accumulate, ncols, use_pf, ps);
    }
}

#define TILE_CASES(DT, USE_PF, PF, LINES)                                                                              \
    switch (mr) {                                                                                              \
    case 1: tile_impl(DT, 1, kc, x, ldx, b, cin, out, ldo, bias, accumulate, ncols, USE_PF, PF, LINES); break;         \
    case 2: tile_impl(DT, 2, kc, x, ldx, b, cin, out, ldo, bias, accumulate, ncols, USE_PF, PF, LINES); break;         \
    case 3: tile_impl(DT, 3, kc, x, ldx, b, cin, out, ldo, bias, accumulate, ncols, USE_PF, PF, LINES); break;         \
    case 4: tile_impl(DT, 4, kc, x, ldx, b, cin, out, ldo, bias, accumulate, ncols, USE_PF, PF, LINES); break;         \
    case 5: tile_impl(DT, 5, kc, x, ldx, b, cin, out, ldo, bias, accumulate, ncols, USE_PF, PF, LINES); break;         \
    default: tile_impl(DT, 6, kc, x, ldx, b, cin, out, ldo, bias, accumulate, ncols, USE_PF, PF, LINES); break;        \
    }

#define DEFINE_TILE(NAME, NAME_PF, DT)                                                                           \
    CALM_TARGET_AVX2 static void NAME(int mr, int kc, const float *x, size_t ldx, const void *b,               \
                                      const float *cin, float *out, size_t ldo, const float *bias, int accumulate, \
                                      int ncols) {                                                             \
        TILE_CASES(DT, 0, NULL, 0)                                                                              \
    }                                                                                                          \
    CALM_TARGET_AVX2 static void NAME_PF(int mr, int kc, const float *x, size_t ldx, const void *b,            \
                                         const float *cin, float *out, size_t ldo, const float *bias,          \
                                         int accumulate, int ncols, const void *pf, int pf_lines) {            \
        TILE_CASES(DT, 1, pf, pf_lines)                                                                           \
    }

DEFINE_TILE(tile_f32, tile_pf_f32, CALM_F32)
DEFINE_TILE(tile_f16, tile_pf_f16, CALM_F16)
DEFINE_TILE(tile_bf16, tile_pf_bf16, CALM_BF16)

/* ---- one row, two panels: 8 accumulators (4 per panel), see calm_row2_fn */

KERNEL_ATTR void row2_impl(const int dt, int k, const float *x, const void *b0, const void *b1, float *out,
                           const float *bias, int accumulate, int ncols) {
    __m256 acc[8];
    for (int q = 0; q < 8; q++) acc[q] = _mm256_setzero_ps();
    const size_t es = dt == CALM_F32 ? 4 : 2;
    const char *p0 = (const char *)b0, *p1 = (const char *)b1;
    for (int kk = 0; kk < k; kk++) {
        __m256 w[8];
        if (dt == CALM_BF16) {
            const uint16_t *q0 = (const uint16_t *)b0 + (size_t)kk * 32, *q1 = (const uint16_t *)b1 + (size_t)kk * 32;
            load_bf16_eo(q0, &w[0], &w[1]);
            load_bf16_eo(q0 + 16, &w[2], &w[3]);
            load_bf16_eo(q1, &w[4], &w[5]);
            load_bf16_eo(q1 + 16, &w[6], &w[7]);
        } else {
            for (int q = 0; q < 4; q++) {
                w[q] = load_w8(dt, b0, kk, q * 8);
                w[q + 4] = load_w8(dt, b1, kk, q * 8);
            }
        }
        _mm_prefetch(p0 + (size_t)(kk + PF_DIST) * 32 * es, _MM_HINT_T0);
        _mm_prefetch(p1 + (size_t)(kk + PF_DIST) * 32 * es, _MM_HINT_T0);
        if (es == 4) {
            _mm_prefetch(p0 + (size_t)(kk + PF_DIST) * 32 * es + 64, _MM_HINT_T0);
            _mm_prefetch(p1 + (size_t)(kk + PF_DIST) * 32 * es + 64, _MM_HINT_T0);
        }
        __m256 a = _mm256_broadcast_ss(x + kk);
        for (int q = 0; q < 8; q++) acc[q] = _mm256_fmadd_ps(a, w[q], acc[q]);
    }
    if (dt == CALM_BF16)
        for (int q = 0; q < 8; q += 2) eo_to_natural(acc[q], acc[q + 1], &acc[q], &acc[q + 1]);
    store_row(acc, 4, out, bias, accumulate, ncols);
    if (ncols > 32) store_row(acc + 4, 4, out + 32, bias ? bias + 32 : NULL, accumulate, ncols - 32);
}

CALM_TARGET_AVX2 void calm__row2_f32_avx2(int k, const float *x, const void *b0, const void *b1, float *out,
                                          const float *bias, int accumulate, int ncols) {
    row2_impl(CALM_F32, k, x, b0, b1, out, bias, accumulate, ncols);
}
CALM_TARGET_AVX2 void calm__row2_f16_avx2(int k, const float *x, const void *b0, const void *b1, float *out,
                                          const float *bias, int accumulate, int ncols) {
    row2_impl(CALM_F16, k, x, b0, b1, out, bias, accumulate, ncols);
}
CALM_TARGET_AVX2 void calm__row2_bf16_avx2(int k, const float *x, const void *b0, const void *b1, float *out,
                                           const float *bias, int accumulate, int ncols) {
    row2_impl(CALM_BF16, k, x, b0, b1, out, bias, accumulate, ncols);
}

const calm_gemm_impl calm__gemm_avx2 = { MR, { 256, 256, 256 }, { tile_f32, tile_f16, tile_bf16 },
                                         { calm__row2_f32_avx2, calm__row2_f16_avx2, calm__row2_bf16_avx2 },
                                         { tile_pf_f32, tile_pf_f16, tile_pf_bf16 } };
#endif
