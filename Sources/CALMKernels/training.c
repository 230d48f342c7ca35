/*
 * Training kernels: plain row-major f32 GEMMs for the forward (X·Wᵀ) and backward (dY·W, dYᵀ·X)
 * products of linear layers whose weights change every step (no packing).
 *
 * All three variants reduce to one core, C[m×n] (+)= A·B with A addressed through (row, col)
 * strides and B row-major k×n: an AVX2+FMA register tile of 4 rows × 16 columns (portable C
 * fallback, and scalar code for the edges). Work is split across the pool by column blocks (or
 * row blocks when there are few columns). Every output element is one chain over k in increasing
 * order, so results do not depend on the split.
 */
#include "internal.h"
#include <stdlib.h>
#include <string.h>

#if CALM_X86
#include <immintrin.h>
#endif

#define TRAIN_SERIAL_FLOPS 400000.0

typedef struct {
    int32_t m, n, k;
    const float *a;
    size_t a_rs, a_cs; /* A(i, kk) = a[i * a_rs + kk * a_cs] */
    const float *b;
    size_t ldb; /* B(kk, j) = b[kk * ldb + j] */
    float *c;
    size_t ldc;
    int accumulate;
    int n_tasks;
    int split_rows;
} gemm_job;

static void gemm_scalar(const gemm_job *J, int32_t i0, int32_t i1, int32_t j0, int32_t j1) {
    for (int32_t i = i0; i < i1; i++) {
        float *ci = J->c + (size_t)i * J->ldc;
        const float *ai = J->a + (size_t)i * J->a_rs;
        for (int32_t j = j0; j < j1; j++) {
            float acc = 0;
            for (int32_t kk = 0; kk < J->k; kk++) acc += ai[(size_t)kk * J->a_cs] * J->b[(size_t)kk * J->ldb + j];
            ci[j] = J->accumulate ? ci[j] + acc : acc;
        }
    }
}

static void gemm_portable(const gemm_job *J, int32_t i0, int32_t i1, int32_t j0, int32_t j1) {
    /* 4 × 8 tiles in plain C (the compiler may vectorise them), scalar edges. */
    int32_t i = i0;
    const int32_t jfull = j0 + (j1 - j0) / 8 * 8;
    for (; i + 4 <= i1; i += 4) {
        for (int32_t j = j0; j < jfull; j += 8) {
            float acc[4][8] = {{0}};
            for (int32_t kk = 0; kk < J->k; kk++) {
                const float *bk = J->b + (size_t)kk * J->ldb + j;
                for (int r = 0; r < 4; r++) {
                    const float av = J->a[(size_t)(i + r) * J->a_rs + (size_t)kk * J->a_cs];
                    for (int c = 0; c < 8; c++) acc[r][c] += av * bk[c];
                }
            }
            for (int r = 0; r < 4; r++) {
                float *ci = J->c + (size_t)(i + r) * J->ldc + j;
                for (int c = 0; c < 8; c++) ci[c] = J->accumulate ? ci[c] + acc[r][c] : acc[r][c];
            }
        }
        if (jfull < j1) gemm_scalar(J, i, i + 4, jfull, j1);
    }
    if (i < i1) gemm_scalar(J, i, i1, j0, j1);
}

#if CALM_X86
CALM_TARGET_AVX2 static void gemm_avx2(const gemm_job *J, int32_t i0, int32_t i1, int32_t j0, int32_t j1) {
    const size_t a_rs = J->a_rs, a_cs = J->a_cs, ldb = J->ldb, ldc = J->ldc;
    const int32_t K = J->k;
    const int32_t j16 = j0 + (j1 - j0) / 16 * 16;
    const int32_t j8 = j16 + (j1 - j16) / 8 * 8;
    int32_t i = i0;
    for (; i + 4 <= i1; i += 4) {
        const float *a0 = J->a + (size_t)i * a_rs, *a1 = a0 + a_rs, *a2 = a1 + a_rs, *a3 = a2 + a_rs;
        for (int32_t j = j0; j < j16; j += 16) {
            __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
            __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
            __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
            __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
            const float *bk = J->b + j;
            for (int32_t kk = 0; kk < K; kk++, bk += ldb) {
                const __m256 b0 = _mm256_loadu_ps(bk), b1 = _mm256_loadu_ps(bk + 8);
                const size_t o = (size_t)kk * a_cs;
                __m256 av = _mm256_broadcast_ss(a0 + o);
                c00 = _mm256_fmadd_ps(av, b0, c00); c01 = _mm256_fmadd_ps(av, b1, c01);
                av = _mm256_broadcast_ss(a1 + o);
                c10 = _mm256_fmadd_ps(av, b0, c10); c11 = _mm256_fmadd_ps(av, b1, c11);
                av = _mm256_broadcast_ss(a2 + o);
                c20 = _mm256_fmadd_ps(av, b0, c20); c21 = _mm256_fmadd_ps(av, b1, c21);
                av = _mm256_broadcast_ss(a3 + o);
                c30 = _mm256_fmadd_ps(av, b0, c30); c31 = _mm256_fmadd_ps(av, b1, c31);
            }
            float *c0 = J->c + (size_t)i * ldc + j, *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
            if (J->accumulate) {
                c00 = _mm256_add_ps(c00, _mm256_loadu_ps(c0)); c01 = _mm256_add_ps(c01, _mm256_loadu_ps(c0 + 8));
                c10 = _mm256_add_ps(c10, _mm256_loadu_ps(c1)); c11 = _mm256_add_ps(c11, _mm256_loadu_ps(c1 + 8));
                c20 = _mm256_add_ps(c20, _mm256_loadu_ps(c2)); c21 = _mm256_add_ps(c21, _mm256_loadu_ps(c2 + 8));
                c30 = _mm256_add_ps(c30, _mm256_loadu_ps(c3)); c31 = _mm256_add_ps(c31, _mm256_loadu_ps(c3 + 8));
            }
            _mm256_storeu_ps(c0, c00); _mm256_storeu_ps(c0 + 8, c01);
            _mm256_storeu_ps(c1, c10); _mm256_storeu_ps(c1 + 8, c11);
            _mm256_storeu_ps(c2, c20); _mm256_storeu_ps(c2 + 8, c21);
            _mm256_storeu_ps(c3, c30); _mm256_storeu_ps(c3 + 8, c31);
        }
        for (int32_t j = j16; j < j8; j += 8) {
            __m256 c0v = _mm256_setzero_ps(), c1v = _mm256_setzero_ps(), c2v = _mm256_setzero_ps(), c3v = _mm256_setzero_ps();
            const float *bk = J->b + j;
            for (int32_t kk = 0; kk < K; kk++, bk += ldb) {
                const __m256 b0 = _mm256_loadu_ps(bk);
                const size_t o = (size_t)kk * a_cs;
                c0v = _mm256_fmadd_ps(_mm256_broadcast_ss(a0 + o), b0, c0v);
                c1v = _mm256_fmadd_ps(_mm256_broadcast_ss(a1 + o), b0, c1v);
                c2v = _mm256_fmadd_ps(_mm256_broadcast_ss(a2 + o), b0, c2v);
                c3v = _mm256_fmadd_ps(_mm256_broadcast_ss(a3 + o), b0, c3v);
            }
            float *c0 = J->c + (size_t)i * ldc + j, *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
            if (J->accumulate) {
                c0v = _mm256_add_ps(c0v, _mm256_loadu_ps(c0)); c1v = _mm256_add_ps(c1v, _mm256_loadu_ps(c1));
                c2v = _mm256_add_ps(c2v, _mm256_loadu_ps(c2)); c3v = _mm256_add_ps(c3v, _mm256_loadu_ps(c3));
            }
            _mm256_storeu_ps(c0, c0v); _mm256_storeu_ps(c1, c1v); _mm256_storeu_ps(c2, c2v); _mm256_storeu_ps(c3, c3v);
        }
        if (j8 < j1) gemm_scalar(J, i, i + 4, j8, j1);
    }
    /* remaining rows, one at a time */
    for (; i < i1; i++) {
        const float *ai = J->a + (size_t)i * a_rs;
        float *ci = J->c + (size_t)i * ldc;
        for (int32_t j = j0; j < j8; j += 8) {
            __m256 acc = _mm256_setzero_ps();
            const float *bk = J->b + j;
            for (int32_t kk = 0; kk < K; kk++, bk += ldb)
                acc = _mm256_fmadd_ps(_mm256_broadcast_ss(ai + (size_t)kk * a_cs), _mm256_loadu_ps(bk), acc);
            if (J->accumulate) acc = _mm256_add_ps(acc, _mm256_loadu_ps(ci + j));
            _mm256_storeu_ps(ci + j, acc);
        }
        if (j8 < j1) gemm_scalar(J, i, i + 1, j8, j1);
    }
}
#endif

static void gemm_block(const gemm_job *J, int32_t i0, int32_t i1, int32_t j0, int32_t j1) {
    if (i0 >= i1 || j0 >= j1) return;
#if CALM_X86
    if (CALM_USE_AVX2()) { gemm_avx2(J, i0, i1, j0, j1); return; }
#endif
    gemm_portable(J, i0, i1, j0, j1);
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
        split_range(t, J->n_tasks, J->m, 4, &lo, &hi);
        gemm_block(J, lo, hi, 0, J->n);
    } else {
        split_range(t, J->n_tasks, J->n, 16, &lo, &hi);
        gemm_block(J, 0, J->m, lo, hi);
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
        gemm_block(J, 0, J->m, 0, J->n);
        return;
    }
    const int32_t col_units = (J->n + 15) / 16, row_units = (J->m + 3) / 4;
    J->split_rows = col_units < threads && row_units > col_units;
    const int32_t units = J->split_rows ? row_units : col_units;
    J->n_tasks = units < threads ? units : threads;
    if (J->n_tasks <= 1) { gemm_block(J, 0, J->m, 0, J->n); return; }
    calm_pool_run(pool, J->n_tasks, gemm_task, J);
}

void calm_gemm_nn(calm_pool *pool, int32_t m, int32_t n, int32_t k, const float *a, size_t lda,
                  const float *b, size_t ldb, float *c, size_t ldc, int accumulate) {
    gemm_job J = { m, n, k, a, lda, 1, b, ldb, c, ldc, accumulate, 1, 0 };
    gemm_run(pool, &J);
}

void calm_gemm_tn(calm_pool *pool, int32_t m, int32_t n, int32_t k, const float *a, size_t lda,
                  const float *b, size_t ldb, float *c, size_t ldc, int accumulate) {
    gemm_job J = { m, n, k, a, 1, lda, b, ldb, c, ldc, accumulate, 1, 0 };
    gemm_run(pool, &J);
}

void calm_gemm_nt(calm_pool *pool, int32_t m, int32_t n, int32_t k, const float *a, size_t lda,
                  const float *b, size_t ldb, float *c, size_t ldc, int accumulate) {
    if (m <= 0 || n <= 0) return;
    /* Transpose B (n × k) into a k × n scratch, then the nn core. */
    size_t bytes = ((size_t)k * (size_t)n * sizeof(float) + 63) & ~(size_t)63;
    float *bt = (float *)aligned_alloc(64, bytes ? bytes : 64);
    for (int32_t j = 0; j < n; j++) {
        const float *bj = b + (size_t)j * ldb;
        for (int32_t kk = 0; kk < k; kk++) bt[(size_t)kk * n + j] = bj[kk];
    }
    gemm_job J = { m, n, k, a, lda, 1, bt, (size_t)n, c, ldc, accumulate, 1, 0 };
    gemm_run(pool, &J);
    free(bt);
}
