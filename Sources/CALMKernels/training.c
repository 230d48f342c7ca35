/*
 * Training kernels (f32, weights change every step so nothing is pre-packed across calls).
 *
 * GEMM: C[m×n] (+)= A·B with A and B addressed through (row, col) strides, so X·Wᵀ, dY·W and
 * dYᵀ·X (and the attention products on strided head slices) all use one routine. Cache-blocked
 * BLIS-style: B blocks of KC × NC packed into 16-column strips, A blocks of MC × KC packed into
 * 6-row strips (per-thread buffers), an AVX2+FMA 6 × 16 register tile (12 accumulators), portable C
 * otherwise. Work is split across the pool by column ranges (or row ranges when there are few
 * columns). Every output element is one FMA chain over k in increasing order starting from 0 (or
 * from C when accumulating); K blocks continue the chain through C, so results do not depend on
 * the split or the thread count.
 *
 * Also: causal multi-head attention forward/backward on those GEMMs, row-wise fused softmax
 * cross-entropy (loss and gradient in place), RMSNorm forward/backward and SwiGLU
 * forward/backward.
 */
#include "internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if CALM_X86
#include <immintrin.h>
#endif

#define TRAIN_SERIAL_FLOPS 200000.0
#define MR 6
#define NR 16
#define KC 256
#define MC 96
#define NC 512

typedef struct {
    int32_t m, n, k;
    const float *a;
    size_t a_rs, a_cs; /* A(i, kk) = a[i * a_rs + kk * a_cs] */
    const float *b;
    size_t b_rs, b_cs; /* B(kk, j) = b[kk * b_rs + j * b_cs] */
    float *c;
    size_t ldc;
    int accumulate;
    int n_tasks;
    int split_rows;
} gemm_job;

/* Per-thread packing buffers (allocated once per thread, never freed: two small blocks). */
static _Thread_local float *tl_apack = NULL;
static _Thread_local float *tl_bpack = NULL;

static float *apack_buf(void) {
    if (!tl_apack) tl_apack = (float *)aligned_alloc(64, sizeof(float) * MC * KC);
    return tl_apack;
}
static float *bpack_buf(void) {
    if (!tl_bpack) tl_bpack = (float *)aligned_alloc(64, sizeof(float) * KC * NC);
    return tl_bpack;
}

/* Packs A rows [i0, i0+mc) × k [k0, k0+kc) into strips of MR rows: strip s holds kc groups of MR. */
static void pack_a(const gemm_job *J, int32_t i0, int32_t mc, int32_t k0, int32_t kc, float *ap) {
    for (int32_t s = 0; s < mc; s += MR) {
        const int32_t rows = mc - s < MR ? mc - s : MR;
        float *dst = ap + (size_t)s * kc;
        if (J->a_cs == 1) {
            for (int32_t r = 0; r < rows; r++) {
                const float *src = J->a + (size_t)(i0 + s + r) * J->a_rs + k0;
                for (int32_t kk = 0; kk < kc; kk++) dst[(size_t)kk * MR + r] = src[kk];
            }
        } else {
            for (int32_t kk = 0; kk < kc; kk++) {
                const float *src = J->a + (size_t)(k0 + kk) * J->a_cs + (size_t)(i0 + s) * J->a_rs;
                for (int32_t r = 0; r < rows; r++) dst[(size_t)kk * MR + r] = src[(size_t)r * J->a_rs];
            }
        }
        for (int32_t r = rows; r < MR; r++)
            for (int32_t kk = 0; kk < kc; kk++) dst[(size_t)kk * MR + r] = 0;
    }
}

/* Packs B k [k0, k0+kc) × columns [j0, j0+nc) into strips of NR columns. */
static void pack_b(const gemm_job *J, int32_t k0, int32_t kc, int32_t j0, int32_t nc, float *bp) {
    for (int32_t s = 0; s < nc; s += NR) {
        const int32_t cols = nc - s < NR ? nc - s : NR;
        float *dst = bp + (size_t)s * kc;
        if (J->b_cs == 1) {
            for (int32_t kk = 0; kk < kc; kk++) {
                const float *src = J->b + (size_t)(k0 + kk) * J->b_rs + (j0 + s);
                float *d = dst + (size_t)kk * NR;
                if (cols == NR) memcpy(d, src, NR * sizeof(float));
                else { for (int32_t c = 0; c < cols; c++) d[c] = src[c]; for (int32_t c = cols; c < NR; c++) d[c] = 0; }
            }
        } else {
            for (int32_t c = 0; c < cols; c++) {
                const float *src = J->b + (size_t)(j0 + s + c) * J->b_cs + (size_t)k0 * J->b_rs;
                for (int32_t kk = 0; kk < kc; kk++) dst[(size_t)kk * NR + c] = src[(size_t)kk * J->b_rs];
            }
            for (int32_t c = cols; c < NR; c++)
                for (int32_t kk = 0; kk < kc; kk++) dst[(size_t)kk * NR + c] = 0;
        }
    }
}

/* c (MR × NR tile, row stride ldc) = (load ? c : 0) + ap · bp over kc. */
static void micro_portable(int32_t kc, const float *ap, const float *bp, float *c, size_t ldc, int load) {
    float acc[MR][NR];
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < NR; j++) acc[r][j] = load ? c[(size_t)r * ldc + j] : 0.0f;
    for (int32_t kk = 0; kk < kc; kk++) {
        const float *a = ap + (size_t)kk * MR, *b = bp + (size_t)kk * NR;
        for (int r = 0; r < MR; r++)
            for (int j = 0; j < NR; j++) acc[r][j] = fmaf(a[r], b[j], acc[r][j]);
    }
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < NR; j++) c[(size_t)r * ldc + j] = acc[r][j];
}

#if CALM_X86
CALM_TARGET_AVX2 static void micro_avx2(int32_t kc, const float *ap, const float *bp, float *c, size_t ldc, int load) {
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    if (load) {
        c00 = _mm256_loadu_ps(c + 0 * ldc); c01 = _mm256_loadu_ps(c + 0 * ldc + 8);
        c10 = _mm256_loadu_ps(c + 1 * ldc); c11 = _mm256_loadu_ps(c + 1 * ldc + 8);
        c20 = _mm256_loadu_ps(c + 2 * ldc); c21 = _mm256_loadu_ps(c + 2 * ldc + 8);
        c30 = _mm256_loadu_ps(c + 3 * ldc); c31 = _mm256_loadu_ps(c + 3 * ldc + 8);
        c40 = _mm256_loadu_ps(c + 4 * ldc); c41 = _mm256_loadu_ps(c + 4 * ldc + 8);
        c50 = _mm256_loadu_ps(c + 5 * ldc); c51 = _mm256_loadu_ps(c + 5 * ldc + 8);
    } else {
        c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_ps();
    }
    for (int32_t kk = 0; kk < kc; kk++, ap += MR, bp += NR) {
        const __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
        __m256 a = _mm256_broadcast_ss(ap + 0);
        c00 = _mm256_fmadd_ps(a, b0, c00); c01 = _mm256_fmadd_ps(a, b1, c01);
        a = _mm256_broadcast_ss(ap + 1);
        c10 = _mm256_fmadd_ps(a, b0, c10); c11 = _mm256_fmadd_ps(a, b1, c11);
        a = _mm256_broadcast_ss(ap + 2);
        c20 = _mm256_fmadd_ps(a, b0, c20); c21 = _mm256_fmadd_ps(a, b1, c21);
        a = _mm256_broadcast_ss(ap + 3);
        c30 = _mm256_fmadd_ps(a, b0, c30); c31 = _mm256_fmadd_ps(a, b1, c31);
        a = _mm256_broadcast_ss(ap + 4);
        c40 = _mm256_fmadd_ps(a, b0, c40); c41 = _mm256_fmadd_ps(a, b1, c41);
        a = _mm256_broadcast_ss(ap + 5);
        c50 = _mm256_fmadd_ps(a, b0, c50); c51 = _mm256_fmadd_ps(a, b1, c51);
    }
    _mm256_storeu_ps(c + 0 * ldc, c00); _mm256_storeu_ps(c + 0 * ldc + 8, c01);
    _mm256_storeu_ps(c + 1 * ldc, c10); _mm256_storeu_ps(c + 1 * ldc + 8, c11);
    _mm256_storeu_ps(c + 2 * ldc, c20); _mm256_storeu_ps(c + 2 * ldc + 8, c21);
    _mm256_storeu_ps(c + 3 * ldc, c30); _mm256_storeu_ps(c + 3 * ldc + 8, c31);
    _mm256_storeu_ps(c + 4 * ldc, c40); _mm256_storeu_ps(c + 4 * ldc + 8, c41);
    _mm256_storeu_ps(c + 5 * ldc, c50); _mm256_storeu_ps(c + 5 * ldc + 8, c51);
}
#endif

static void micro(int32_t kc, const float *ap, const float *bp, float *c, size_t ldc, int load) {
#if CALM_X86
    if (CALM_USE_AVX2()) { micro_avx2(kc, ap, bp, c, ldc, load); return; }
#endif
    micro_portable(kc, ap, bp, c, ldc, load);
}

/* The blocked product for rows [i0, i1) × columns [j0, j1), all of k. */
static void gemm_blocked(const gemm_job *J, int32_t i0, int32_t i1, int32_t j0, int32_t j1) {
    if (i0 >= i1 || j0 >= j1) return;
    float *ap = apack_buf(), *bp = bpack_buf();
    float tile[MR * NR];
    for (int32_t jc = j0; jc < j1; jc += NC) {
        const int32_t nc = j1 - jc < NC ? j1 - jc : NC;
        for (int32_t pc = 0; pc < J->k; pc += KC) {
            const int32_t kc = J->k - pc < KC ? J->k - pc : KC;
            const int load = pc > 0 || J->accumulate;
            pack_b(J, pc, kc, jc, nc, bp);
            for (int32_t ic = i0; ic < i1; ic += MC) {
                const int32_t mc = i1 - ic < MC ? i1 - ic : MC;
                pack_a(J, ic, mc, pc, kc, ap);
                for (int32_t jr = 0; jr < nc; jr += NR) {
                    const int32_t nr = nc - jr < NR ? nc - jr : NR;
                    const float *bs = bp + (size_t)jr * kc;
                    for (int32_t ir = 0; ir < mc; ir += MR) {
                        const int32_t mr = mc - ir < MR ? mc - ir : MR;
                        const float *as = ap + (size_t)ir * kc;
                        float *c = J->c + (size_t)(ic + ir) * J->ldc + (jc + jr);
                        if (mr == MR && nr == NR) {
                            micro(kc, as, bs, c, J->ldc, load);
                        } else {
                            if (load)
                                for (int r = 0; r < mr; r++)
                                    for (int q = 0; q < nr; q++) tile[r * NR + q] = c[(size_t)r * J->ldc + q];
                            micro(kc, as, bs, tile, NR, load);
                            for (int r = 0; r < mr; r++)
                                for (int q = 0; q < nr; q++) c[(size_t)r * J->ldc + q] = tile[r * NR + q];
                        }
                    }
                }
            }
        }
    }
}

static void split_range(int t, int n_tasks, int32_t total, int32_t align, int32_t *lo, int32_t *hi) {
    int32_t units = (total + align - 1) / align;
    int32_t a = (int32_t)(((int64_t)units * t) / n_tasks), b = (int32_t)(((int64_t)units * (t + 1)) / n_tasks);
    *lo = a * align < total ? a * align : total;
    *hi = b * align < total ? b * align : total;
}

static void gemm_task(void *ctx, int t, int thread_index) {
    (void)thread_index;
    const gemm_job *J = (const gemm_job *)ctx;
    int32_t lo, hi;
    if (J->split_rows) {
        split_range(t, J->n_tasks, J->m, MR, &lo, &hi);
        gemm_blocked(J, lo, hi, 0, J->n);
    } else {
        split_range(t, J->n_tasks, J->n, NR, &lo, &hi);
        gemm_blocked(J, 0, J->m, lo, hi);
    }
}

static void gemm_run(calm_pool *pool, gemm_job *J) {
    if (J->m <= 0 || J->n <= 0) return;
    if (J->k <= 0) {
        if (!J->accumulate)
            for (int32_t i = 0; i < J->m; i++) memset(J->c + (size_t)i * J->ldc, 0, (size_t)J->n * sizeof(float));
        return;
    }
    const int threads = calm_pool_size(pool);
    const double flops = 2.0 * J->m * (double)J->n * J->k;
    if (threads <= 1 || flops < TRAIN_SERIAL_FLOPS) {
        gemm_blocked(J, 0, J->m, 0, J->n);
        return;
    }
    const int32_t col_units = (J->n + NR - 1) / NR, row_units = (J->m + MR - 1) / MR;
    /* Splitting columns makes every thread pack all of A (m × k); splitting rows, all of B (k × n):
     * split the dimension whose shared operand is smaller to re-pack, if there is enough of it. */
    J->split_rows = row_units >= 2 * threads && (J->m > J->n || col_units < 2 * threads);
    const int32_t units = J->split_rows ? row_units : col_units;
    J->n_tasks = units < threads ? units : threads;
    if (J->n_tasks <= 1) { gemm_blocked(J, 0, J->m, 0, J->n); return; }
    calm_pool_run(pool, J->n_tasks, gemm_task, J);
}

static void gemm_serial(int32_t m, int32_t n, int32_t k, const float *a, size_t a_rs, size_t a_cs,
                        const float *b, size_t b_rs, size_t b_cs, float *c, size_t ldc, int accumulate) {
    gemm_job J = { m, n, k, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc, accumulate, 1, 0 };
    gemm_run(NULL, &J);
}

void calm_gemm_nn(calm_pool *pool, int32_t m, int32_t n, int32_t k, const float *a, size_t lda,
                  const float *b, size_t ldb, float *c, size_t ldc, int accumulate) {
    gemm_job J = { m, n, k, a, lda, 1, b, ldb, 1, c, ldc, accumulate, 1, 0 };
    gemm_run(pool, &J);
}

void calm_gemm_tn(calm_pool *pool, int32_t m, int32_t n, int32_t k, const float *a, size_t lda,
                  const float *b, size_t ldb, float *c, size_t ldc, int accumulate) {
    gemm_job J = { m, n, k, a, 1, lda, b, ldb, 1, c, ldc, accumulate, 1, 0 };
    gemm_run(pool, &J);
}

void calm_gemm_nt(calm_pool *pool, int32_t m, int32_t n, int32_t k, const float *a, size_t lda,
                  const float *b, size_t ldb, float *c, size_t ldc, int accumulate) {
    gemm_job J = { m, n, k, a, lda, 1, b, 1, ldb, c, ldc, accumulate, 1, 0 };
    gemm_run(pool, &J);
}

/* ---------------------------------------------------------------- vector helpers */

#if CALM_X86
#define TINL CALM_TARGET_AVX2 __attribute__((always_inline)) static inline

TINL float t_hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

TINL float t_hmax8(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* e^x for 8 lanes: the row ops' vectorised exp (rel. error ~2e-7). */
#include "exp_avx2.h"
#define t_exp8 calm__exp8_avx2

/* max of x[0..n) */
CALM_TARGET_AVX2 static float t_max_avx2(const float *x, int32_t n) {
    int32_t i = 0;
    float m = -INFINITY;
    if (n >= 8) {
        __m256 vm = _mm256_loadu_ps(x);
        for (i = 8; i + 8 <= n; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
        m = t_hmax8(vm);
    }
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

/* x[j] = exp(x[j] * scale - shift) for j < n; returns the sum. */
CALM_TARGET_AVX2 static float t_expsum_avx2(float *x, int32_t n, float scale, float shift) {
    int32_t i = 0;
    __m256 vs = _mm256_setzero_ps();
    const __m256 sc = _mm256_set1_ps(scale), sh = _mm256_set1_ps(shift);
    for (; i + 8 <= n; i += 8) {
        __m256 e = t_exp8(_mm256_fmsub_ps(_mm256_loadu_ps(x + i), sc, sh));
        _mm256_storeu_ps(x + i, e);
        vs = _mm256_add_ps(vs, e);
    }
    float s = t_hsum8(vs);
    for (; i < n; i++) { x[i] = expf(x[i] * scale - shift); s += x[i]; }
    return s;
}

CALM_TARGET_AVX2 static void t_scale_avx2(float *x, int32_t n, float f) {
    int32_t i = 0;
    const __m256 vf = _mm256_set1_ps(f);
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vf));
    for (; i < n; i++) x[i] *= f;
}

CALM_TARGET_AVX2 static float t_dot_avx2(const float *a, const float *b, int32_t n) {
    int32_t i = 0;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = t_hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}
#endif

static float t_max(const float *x, int32_t n) {
#if CALM_X86
    if (CALM_USE_AVX2()) return t_max_avx2(x, n);
#endif
    float m = -INFINITY;
    for (int32_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

static float t_expsum(float *x, int32_t n, float scale, float shift) {
#if CALM_X86
    if (CALM_USE_AVX2()) return t_expsum_avx2(x, n, scale, shift);
#endif
    float s = 0;
    for (int32_t i = 0; i < n; i++) { x[i] = expf(x[i] * scale - shift); s += x[i]; }
    return s;
}

static void t_scale(float *x, int32_t n, float f) {
#if CALM_X86
    if (CALM_USE_AVX2()) { t_scale_avx2(x, n, f); return; }
#endif
    for (int32_t i = 0; i < n; i++) x[i] *= f;
}

static float t_dot(const float *a, const float *b, int32_t n) {
#if CALM_X86
    if (CALM_USE_AVX2()) return t_dot_avx2(a, b, n);
#endif
    float s = 0;
    for (int32_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* ---------------------------------------------------------------- softmax cross-entropy */

typedef struct {
    float *x;
    const int32_t *labels;
    int32_t rows, v;
    float scale;
    float *row_loss;
    int n_tasks;
} xent_job;

static void xent_task(void *ctx, int t, int thread_index) {
    (void)thread_index;
    const xent_job *J = (const xent_job *)ctx;
    int32_t lo, hi;
    split_range(t, J->n_tasks, J->rows, 1, &lo, &hi);
    for (int32_t r = lo; r < hi; r++) {
        float *x = J->x + (size_t)r * J->v;
        const int32_t label = J->labels[r];
        const float m = t_max(x, J->v);
        const float target = x[label];
        const float s = t_expsum(x, J->v, 1.0f, m);
        J->row_loss[r] = logf(s) + m - target;
        t_scale(x, J->v, J->scale / s);
        x[label] -= J->scale;
    }
}

void calm_train_softmax_xent(calm_pool *pool, float *logits, const int32_t *labels, int32_t rows, int32_t v,
                             float grad_scale, float *row_loss) {
    if (rows <= 0) return;
    xent_job J = { logits, labels, rows, v, grad_scale, row_loss, 1 };
    const int threads = calm_pool_size(pool);
    J.n_tasks = rows < threads ? rows : threads;
    if (J.n_tasks <= 1 || (double)rows * v < 65536) { J.n_tasks = 1; xent_task(&J, 0, 0); return; }
    calm_pool_run(pool, J.n_tasks, xent_task, &J);
}

/* ---------------------------------------------------------------- causal attention */

#define ATT_BLK 96

typedef struct {
    const float *q, *k, *v, *dout;
    float *out, *probs, *dq, *dk, *dv;
    int32_t seqs, t, heads, kv_heads, d;
    float scale;
    const int32_t *key_start; /* forward only: first visible key per row (seqs*t), or NULL */
} attn_job;

static void attn_fwd_task(void *ctx, int unit, int thread_index) {
    (void)thread_index;
    const attn_job *J = (const attn_job *)ctx;
    const int32_t T = J->t, d = J->d, H = J->heads, G = J->kv_heads, group = H / G;
    const size_t qw = (size_t)H * d, kw = (size_t)G * d;
    const int32_t s = unit / G, g = unit % G;
    const float *K = J->k + (size_t)s * T * kw + (size_t)g * d;
    const float *V = J->v + (size_t)s * T * kw + (size_t)g * d;
    for (int32_t h = g * group; h < (g + 1) * group; h++) {
        const float *Q = J->q + (size_t)s * T * qw + (size_t)h * d;
        float *O = J->out + (size_t)s * T * qw + (size_t)h * d;
        float *P = J->probs + ((size_t)s * H + h) * (size_t)T * T;
        for (int32_t r0 = 0; r0 < T; r0 += ATT_BLK) {
            const int32_t r1 = T - r0 < ATT_BLK ? T : r0 + ATT_BLK;
            gemm_serial(r1 - r0, r1, d, Q + (size_t)r0 * qw, qw, 1, K, 1, kw, P + (size_t)r0 * T, (size_t)T, 0);
            for (int32_t i = r0; i < r1; i++) {
                float *row = P + (size_t)i * T;
                /* visible keys lo..i (lo = 0: plain causal); the masked ones get probability 0 */
                int32_t lo = J->key_start ? J->key_start[(size_t)s * T + i] : 0;
                if (lo < 0) lo = 0;
                if (lo > i) lo = i;
                const float m = t_max(row + lo, i + 1 - lo) * J->scale;
                const float sum = t_expsum(row + lo, i + 1 - lo, J->scale, m);
                t_scale(row + lo, i + 1 - lo, 1.0f / sum);
                if (lo > 0) memset(row, 0, (size_t)lo * sizeof(float));
                memset(row + i + 1, 0, (size_t)(T - i - 1) * sizeof(float));
            }
            gemm_serial(r1 - r0, d, r1, P + (size_t)r0 * T, (size_t)T, 1, V, kw, 1, O + (size_t)r0 * qw, qw, 0);
        }
    }
}

void calm_train_attention_forward_masked(calm_pool *pool, const float *q, const float *k, const float *v, int32_t seqs,
                                         int32_t t, int32_t heads, int32_t kv_heads, int32_t head_dim,
                                         const int32_t *key_start, float *out, float *probs) {
    if (seqs <= 0 || t <= 0) return;
    attn_job J = { q, k, v, NULL, out, probs, NULL, NULL, NULL, seqs, t, heads, kv_heads, head_dim,
                   1.0f / sqrtf((float)head_dim), key_start };
    calm_pool_run(pool, seqs * kv_heads, attn_fwd_task, &J);
}

void calm_train_attention_forward(calm_pool *pool, const float *q, const float *k, const float *v, int32_t seqs,
                                  int32_t t, int32_t heads, int32_t kv_heads, int32_t head_dim, float *out,
                                  float *probs) {
    calm_train_attention_forward_masked(pool, q, k, v, seqs, t, heads, kv_heads, head_dim, NULL, out, probs);
}

static void attn_bwd_task(void *ctx, int unit, int thread_index) {
    (void)thread_index;
    const attn_job *J = (const attn_job *)ctx;
    const int32_t T = J->t, d = J->d, H = J->heads, G = J->kv_heads, group = H / G;
    const size_t qw = (size_t)H * d, kw = (size_t)G * d;
    const int32_t s = unit / G, g = unit % G;
    const float *K = J->k + (size_t)s * T * kw + (size_t)g * d;
    const float *V = J->v + (size_t)s * T * kw + (size_t)g * d;
    float *dK = J->dk + (size_t)s * T * kw + (size_t)g * d;
    float *dV = J->dv + (size_t)s * T * kw + (size_t)g * d;
    for (int32_t i = 0; i < T; i++) {
        memset(dK + (size_t)i * kw, 0, (size_t)d * sizeof(float));
        memset(dV + (size_t)i * kw, 0, (size_t)d * sizeof(float));
    }
    float *dP = (float *)malloc(sizeof(float) * (size_t)ATT_BLK * T);
    for (int32_t h = g * group; h < (g + 1) * group; h++) {
        const float *Q = J->q + (size_t)s * T * qw + (size_t)h * d;
        const float *dO = J->dout + (size_t)s * T * qw + (size_t)h * d;
        float *dQ = J->dq + (size_t)s * T * qw + (size_t)h * d;
        const float *P = J->probs + ((size_t)s * H + h) * (size_t)T * T;
        for (int32_t r0 = 0; r0 < T; r0 += ATT_BLK) {
            const int32_t r1 = T - r0 < ATT_BLK ? T : r0 + ATT_BLK, nb = r1 - r0;
            /* dP = dO · Vᵀ over visible columns */
            gemm_serial(nb, r1, d, dO + (size_t)r0 * qw, qw, 1, V, 1, kw, dP, (size_t)T, 0);
            for (int32_t i = r0; i < r1; i++) {
                float *dp = dP + (size_t)(i - r0) * T;
                const float *p = P + (size_t)i * T;
                const float dot = t_dot(p, dp, i + 1);
                for (int32_t j = 0; j <= i; j++) dp[j] = p[j] * (dp[j] - dot) * J->scale;
                for (int32_t j = i + 1; j < r1; j++) dp[j] = 0;
            }
            /* dQ rows = dS · K; dK += dSᵀ · Q; dV += Pᵀ · dO */
            gemm_serial(nb, d, r1, dP, (size_t)T, 1, K, kw, 1, dQ + (size_t)r0 * qw, qw, 0);
            gemm_serial(r1, d, nb, dP, 1, (size_t)T, Q + (size_t)r0 * qw, qw, 1, dK, kw, 1);
            gemm_serial(r1, d, nb, P + (size_t)r0 * T, 1, (size_t)T, dO + (size_t)r0 * qw, qw, 1, dV, kw, 1);
        }
    }
    free(dP);
}

void calm_train_attention_backward(calm_pool *pool, const float *q, const float *k, const float *v,
                                   const float *probs, const float *dout, int32_t seqs, int32_t t, int32_t heads,
                                   int32_t kv_heads, int32_t head_dim, float *dq, float *dk, float *dv) {
    if (seqs <= 0 || t <= 0) return;
    attn_job J = { q, k, v, dout, NULL, (float *)probs, dq, dk, dv, seqs, t, heads, kv_heads, head_dim,
                   1.0f / sqrtf((float)head_dim), NULL };
    calm_pool_run(pool, seqs * kv_heads, attn_bwd_task, &J);
}

/* ---------------------------------------------------------------- SwiGLU / SiLU backward */

#if CALM_X86
CALM_TARGET_AVX2 static void swiglu_bwd_avx2(const float *gate, const float *up, const float *dy, float *dg, float *du, size_t n) {
    size_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i), u = _mm256_loadu_ps(up + i), d = _mm256_loadu_ps(dy + i);
        const __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, t_exp8(_mm256_sub_ps(_mm256_setzero_ps(), g))));
        const __m256 gs = _mm256_mul_ps(g, s);
        /* du = dy·g·s;  dg = dy·u·s·(1 + g·(1 − s)) */
        const __m256 dgv = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(d, u), s),
                                         _mm256_add_ps(one, _mm256_mul_ps(g, _mm256_sub_ps(one, s))));
        _mm256_storeu_ps(du + i, _mm256_mul_ps(d, gs));
        _mm256_storeu_ps(dg + i, dgv);
    }
    for (; i < n; i++) {
        const float g = gate[i], s = 1.0f / (1.0f + expf(-g));
        du[i] = dy[i] * g * s;
        dg[i] = dy[i] * up[i] * s * (1 + g * (1 - s));
    }
}

CALM_TARGET_AVX2 static void silu_bwd_avx2(const float *x, const float *dy, float *dx, size_t n) {
    size_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(x + i), d = _mm256_loadu_ps(dy + i);
        const __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, t_exp8(_mm256_sub_ps(_mm256_setzero_ps(), g))));
        _mm256_storeu_ps(dx + i, _mm256_mul_ps(_mm256_mul_ps(d, s), _mm256_add_ps(one, _mm256_mul_ps(g, _mm256_sub_ps(one, s)))));
    }
    for (; i < n; i++) {
        const float g = x[i], s = 1.0f / (1.0f + expf(-g));
        dx[i] = dy[i] * s * (1 + g * (1 - s));
    }
}
#endif

/* gelu_new = x * s, s = sigmoid(k (x + a x^3)), k = 2 sqrt(2/pi):
   d/dx = s + x s (1 - s) k (1 + 3 a x^2) */
void calm_train_gelu_tanh_backward(const float *x, const float *dy, float *dx, size_t n) {
    const float k = 1.5957691216057308f, a = 0.044715f;
    for (size_t i = 0; i < n; i++) {
        const float g = x[i], s = 1.0f / (1.0f + expf(-k * (g + a * g * g * g)));
        dx[i] = dy[i] * (s + g * s * (1 - s) * k * (1 + 3 * a * g * g));
    }
}

void calm_train_swiglu_backward(const float *gate, const float *up, const float *dy, float *dgate, float *dup, size_t n) {
#if CALM_X86
    if (CALM_USE_AVX2()) { swiglu_bwd_avx2(gate, up, dy, dgate, dup, n); return; }
#endif
    for (size_t i = 0; i < n; i++) {
        const float g = gate[i], s = 1.0f / (1.0f + expf(-g));
        dup[i] = dy[i] * g * s;
        dgate[i] = dy[i] * up[i] * s * (1 + g * (1 - s));
    }
}

void calm_train_silu_backward(const float *x, const float *dy, float *dx, size_t n) {
#if CALM_X86
    if (CALM_USE_AVX2()) { silu_bwd_avx2(x, dy, dx, n); return; }
#endif
    for (size_t i = 0; i < n; i++) {
        const float g = x[i], s = 1.0f / (1.0f + expf(-g));
        dx[i] = dy[i] * s * (1 + g * (1 - s));
    }
}

/* ---------------------------------------------------------------- RMSNorm */

void calm_train_rmsnorm_forward(const float *x, const float *w, float *y, float *rstd, int32_t rows, int32_t n, float eps) {
    for (int32_t r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * n;
        float *yr = y + (size_t)r * n;
        const float inv = 1.0f / sqrtf(t_dot(xr, xr, n) / (float)n + eps);
        rstd[r] = inv;
        for (int32_t j = 0; j < n; j++) yr[j] = w[j] * (xr[j] * inv);
    }
}

void calm_train_rmsnorm_backward(const float *x, const float *w, const float *rstd, const float *dy, float *dx,
                                 float *dw, int32_t rows, int32_t n) {
    for (int32_t r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * n, *dyr = dy + (size_t)r * n;
        float *dxr = dx + (size_t)r * n;
        const float inv = rstd[r];
        float dot = 0;
        for (int32_t j = 0; j < n; j++) {
            dot += w[j] * dyr[j] * xr[j];
            if (dw) dw[j] += dyr[j] * xr[j] * inv;
        }
        const float c = dot / (float)n * inv * inv * inv;
        for (int32_t j = 0; j < n; j++) dxr[j] = inv * w[j] * dyr[j] - xr[j] * c;
    }
}

/* ---------------------------------------------------------------- AdamW */

typedef struct {
    float *w, *g, *m, *v;
    size_t n;
    float lr, b1, b2, c1, c2, eps, decay, gscale;
    int n_tasks;
} adamw_job;

static void adamw_range(const adamw_job *J, size_t lo, size_t hi) {
    const float b1 = J->b1, b2 = J->b2, ic1 = 1.0f / J->c1, ic2 = 1.0f / J->c2;
    size_t i = lo;
#if CALM_X86
    if (CALM_USE_AVX2()) {
        extern void calm__adamw_avx2(const adamw_job *J, size_t lo, size_t hi);
        calm__adamw_avx2(J, lo, hi - (hi - lo) % 8);
        i = hi - (hi - lo) % 8;
    }
#endif
    for (; i < hi; i++) {
        const float gi = J->g[i] * J->gscale;
        J->g[i] = gi;
        J->m[i] = b1 * J->m[i] + (1 - b1) * gi;
        J->v[i] = b2 * J->v[i] + (1 - b2) * gi * gi;
        J->w[i] *= J->decay;
        J->w[i] -= J->lr * (J->m[i] * ic1) / (sqrtf(J->v[i] * ic2) + J->eps);
    }
}

#if CALM_X86
CALM_TARGET_AVX2 void calm__adamw_avx2(const adamw_job *J, size_t lo, size_t hi) {
    const __m256 b1 = _mm256_set1_ps(J->b1), b2 = _mm256_set1_ps(J->b2);
    const __m256 nb1 = _mm256_set1_ps(1 - J->b1), nb2 = _mm256_set1_ps(1 - J->b2);
    const __m256 ic1 = _mm256_set1_ps(1.0f / J->c1), ic2 = _mm256_set1_ps(1.0f / J->c2);
    const __m256 lr = _mm256_set1_ps(J->lr), eps = _mm256_set1_ps(J->eps), decay = _mm256_set1_ps(J->decay);
    const __m256 gs = _mm256_set1_ps(J->gscale);
    for (size_t i = lo; i < hi; i += 8) {
        const __m256 g = _mm256_mul_ps(_mm256_loadu_ps(J->g + i), gs);
        _mm256_storeu_ps(J->g + i, g);
        const __m256 m = _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(J->m + i)), _mm256_mul_ps(nb1, g));
        const __m256 v = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(J->v + i)), _mm256_mul_ps(_mm256_mul_ps(nb2, g), g));
        _mm256_storeu_ps(J->m + i, m);
        _mm256_storeu_ps(J->v + i, v);
        __m256 w = _mm256_mul_ps(_mm256_loadu_ps(J->w + i), decay);
        const __m256 den = _mm256_add_ps(_mm256_sqrt_ps(_mm256_mul_ps(v, ic2)), eps);
        w = _mm256_sub_ps(w, _mm256_div_ps(_mm256_mul_ps(lr, _mm256_mul_ps(m, ic1)), den));
        _mm256_storeu_ps(J->w + i, w);
    }
}
#endif

static void adamw_task(void *ctx, int t, int thread_index) {
    (void)thread_index;
    const adamw_job *J = (const adamw_job *)ctx;
    const size_t lo = J->n * (size_t)t / (size_t)J->n_tasks, hi = J->n * (size_t)(t + 1) / (size_t)J->n_tasks;
    adamw_range(J, lo & ~(size_t)7, t + 1 == J->n_tasks ? J->n : (hi & ~(size_t)7));
}

void calm_train_adamw(calm_pool *pool, float *w, float *g, float *m, float *v, size_t n, float lr, float beta1,
                      float beta2, float bias1, float bias2, float eps, float decay, float grad_scale) {
    adamw_job J = { w, g, m, v, n, lr, beta1, beta2, bias1, bias2, eps, decay, grad_scale, 1 };
    const int threads = calm_pool_size(pool);
    if (threads <= 1 || n < 65536) { adamw_range(&J, 0, n); return; }
    J.n_tasks = threads;
    calm_pool_run(pool, threads, adamw_task, &J);
}
