/*
 * calm_linear / calm_linear_argmax drivers: choose the ISA's tile kernels, split the column
 * panels (or, with fewer panels than threads, the rows) into contiguous ranges across the pool,
 * and run K-blocked register tiles. Every output element is one FMA chain over k in increasing
 * order (partial sums between K blocks are stored as floats, which is exact), so results do not
 * depend on m, the split, or the pool size.
 */
#include "internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SERIAL_FLOPS 200000.0 /* below this, threads cost more than they save */
/* Streaming path (impls with tile_pf, products of 3 rows or more): K blocks of at most STREAM_BLOCK
   bytes of a panel, kept in L2 while every row tile passes over them, with the next block (the
   weights right after it in memory) prefetched meanwhile, a share per tile. Without it, the first
   row tile's pass over a block waited for memory and the others did not overlap that wait: at
   M = 16 with weights beyond the caches (every decode step of a model) the multiply ran at about
   half the FMA rate it reaches with the same weights in cache. 64 KiB blocks (half a panel of
   K = 1024 in f32) measured 3-8% faster than 128 KiB at M = 16 on Zen 3 (interleaved A/B, THP on)
   and equal at M = 34 and 256. */
#define STREAM_MIN_ROWS 3
#define STREAM_BLOCK (64 * 1024)

const calm_gemm_impl *calm__gemm_active(void) {
#if CALM_X86
    const calm_gemm_impl *impl = NULL;
    switch (calm__isa()) {
    case CALM_ISA_AVX512: impl = &calm__gemm_avx512; break;
    case CALM_ISA_AVX2: impl = &calm__gemm_avx2; break;
    default: break;
    }
    if (impl && impl->tile[0]) return impl;
#endif
    return &calm__gemm_portable;
}

typedef struct {
    const float *x;
    int32_t m;
    size_t ldx;
    const calm_matrix *w;
    const float *bias;
    float *y;
    size_t ldy;
    int accumulate;
    const calm_gemm_impl *impl;
    int n_tasks;
    int split_rows;      /* 0: tasks own panel ranges; 1: tasks own row ranges */
    int32_t n_panels;
    /* argmax mode when best_v != NULL: per task, m entries each */
    float *best_v;
    int32_t *best_i;
} linear_job;

static void *aligned_scratch(size_t floats) {
    size_t bytes = (floats * sizeof(float) + 63) & ~(size_t)63;
    return aligned_alloc(64, bytes ? bytes : 64);
}

static void task_range(int t, int n_tasks, int32_t total, int32_t align, int32_t *lo, int32_t *hi) {
    int32_t units = (total + align - 1) / align;
    int32_t a = (int32_t)(((int64_t)units * t) / n_tasks), b = (int32_t)(((int64_t)units * (t + 1)) / n_tasks);
    *lo = a * align;
    *hi = b * align < total ? b * align : total;
    if (*lo > total) *lo = total;
}

/* Folds n values (columns j0..j0+n-1) into a row's running (best, index). */
static inline void reduce_row(const float *v, int n, int32_t j0, float *best_io, int32_t *idx_io) {
    float best = *best_io;
    /* branch-free pre-check (vectorises): most panels hold nothing better than the running max */
    int any = 0;
    for (int c = 0; c < n; c++) any |= !(v[c] <= best); /* v > best, or NaN */
    if (!any) return;
    int32_t idx = *idx_io;
    for (int c = 0; c < n; c++)
        if (calm__argmax_better(v[c], best)) { best = v[c]; idx = j0 + c; }
    *best_io = best;
    *idx_io = idx;
}

static void linear_task(void *ctx, int t, int thread_index) {
    (void)thread_index;
    const linear_job *J = (const linear_job *)ctx;
    const calm_matrix *w = J->w;
    const int32_t K = w->k, N = w->n;
    const size_t es = calm_dtype_size(w->dtype);
    const calm_tile_fn tile = J->impl->tile[w->dtype];
    const calm_tile_pf_fn tile_pf = J->impl->tile_pf[w->dtype];
    const int mr = J->impl->mr;
    int32_t p0 = 0, p1 = J->n_panels, r0 = 0, r1 = J->m;
    if (J->split_rows) task_range(t, J->n_tasks, J->m, mr, &r0, &r1);
    else task_range(t, J->n_tasks, J->n_panels, 1, &p0, &p1);
    const int32_t rows = r1 - r0;
    if (rows <= 0 || p0 >= p1) return;
    const int argmax = J->best_v != NULL;
    /* one register tile of rows: stream the panel once over all of K; else block K for reuse, with
       the partial sums of every row tile kept (as floats: exact) in `part` between K blocks */
    int32_t KC = rows <= mr ? K : J->impl->kc[w->dtype];
    const int stream = tile_pf != NULL && rows >= STREAM_MIN_ROWS;
    const size_t panel_bytes = (size_t)K * CALM_PANEL * es;
    const unsigned char *w_end = (const unsigned char *)w->data + (size_t)J->n_panels * panel_bytes;
    if (stream) {
        const int32_t blocks = (int32_t)((panel_bytes + STREAM_BLOCK - 1) / STREAM_BLOCK);
        KC = (K + blocks - 1) / blocks;
    }
    const int tiles_per_block = (rows + mr - 1) / mr;
    const int32_t rows_r = (rows + mr - 1) / mr * mr;
    float stack_part[48 * CALM_PANEL] __attribute__((aligned(64)));
    float abuf[16 * CALM_PANEL] __attribute__((aligned(64))); /* one tile (<= 16 rows) or 2 panels of one row */
    float *part = NULL;
    if (K > KC) {
        part = rows_r <= 48 ? stack_part : (float *)aligned_scratch((size_t)rows_r * CALM_PANEL);
        if (!part) KC = K; /* out of memory: unblocked K, same results */
    }
    float *bv = argmax ? J->best_v + (size_t)t * J->m : NULL;
    int32_t *bi = argmax ? J->best_i + (size_t)t * J->m : NULL;
    if (argmax)
        for (int32_t i = r0; i < r1; i++) { bv[i] = -INFINITY; bi[i] = p0 * CALM_PANEL; }

    const calm_row2_fn row2 = rows == 1 ? J->impl->row2[w->dtype] : NULL;
    for (int32_t p = p0; p < p1; p++) {
        const unsigned char *panel = (const unsigned char *)w->data + (size_t)p * (size_t)K * CALM_PANEL * es;
        if (row2 && p + 1 < p1) {
            /* one row, two panels at a time */
            const int nc2 = N - p * CALM_PANEL < 2 * CALM_PANEL ? N - p * CALM_PANEL : 2 * CALM_PANEL;
            const unsigned char *panel1 = panel + (size_t)K * CALM_PANEL * es;
            const float *xi = J->x + (size_t)r0 * J->ldx;
            if (argmax) {
                row2(K, xi, panel, panel1, abuf, NULL, 0, 2 * CALM_PANEL);
                reduce_row(abuf, nc2, p * CALM_PANEL, &bv[r0], &bi[r0]);
            } else {
                row2(K, xi, panel, panel1, J->y + (size_t)r0 * J->ldy + (size_t)p * CALM_PANEL,
                     J->bias ? J->bias + (size_t)p * CALM_PANEL : NULL, J->accumulate, nc2);
            }
            p++;
            continue;
        }
        const int ncols = N - p * CALM_PANEL < CALM_PANEL ? N - p * CALM_PANEL : CALM_PANEL;
        for (int32_t k0 = 0; k0 < K; k0 += KC) {
            const int kc = K - k0 < KC ? K - k0 : KC;
            const int last = k0 + kc == K;
            /* streaming: the block after this one (the next K block or panel) is prefetched, a share
               per row tile */
            const unsigned char *pf = panel + (size_t)(k0 + kc) * CALM_PANEL * es;
            int32_t pf_lines = 0;
            if (stream && pf < w_end) {
                size_t bytes = (size_t)kc * CALM_PANEL * es;
                if (bytes > (size_t)(w_end - pf)) bytes = (size_t)(w_end - pf);
                pf_lines = (int32_t)(bytes / 64);
            }
            /* row tiles of balanced height (16 rows: 6, 5, 5, not 6, 6, 4): a 4-row tile has too few
               accumulators to cover the FMA latency, and any split gives the same sums */
            for (int jt = 0; jt < tiles_per_block; jt++) {
                const int32_t i = r0 + (int32_t)((int64_t)rows * jt / tiles_per_block);
                const int mri = (int)(r0 + (int32_t)((int64_t)rows * (jt + 1) / tiles_per_block) - i);
                float *pp = part ? part + (size_t)(i - r0) * CALM_PANEL : NULL;
                const float *cin = k0 == 0 ? NULL : pp;
                const float *xi = J->x + (size_t)i * J->ldx + (size_t)k0;
                const void *bk = panel + (size_t)k0 * CALM_PANEL * es;
                if (stream) {
                    const int j = jt;
                    const int32_t l0 = (int32_t)((int64_t)pf_lines * j / tiles_per_block);
                    const int32_t l1 = (int32_t)((int64_t)pf_lines * (j + 1) / tiles_per_block);
                    float *o = last ? (argmax ? abuf : J->y + (size_t)i * J->ldy + (size_t)p * CALM_PANEL) : pp;
                    const size_t ldo = last && !argmax ? J->ldy : CALM_PANEL;
                    const float *bias = last && !argmax && J->bias ? J->bias + (size_t)p * CALM_PANEL : NULL;
                    tile_pf(mri, kc, xi, J->ldx, bk, cin, o, ldo, bias, last && !argmax ? J->accumulate : 0,
                            last && !argmax ? ncols : CALM_PANEL, pf + (size_t)l0 * 64, l1 - l0);
                    if (last && argmax)
                        for (int r = 0; r < mri; r++)
                            reduce_row(abuf + (size_t)r * CALM_PANEL, ncols, p * CALM_PANEL, &bv[i + r], &bi[i + r]);
                } else if (!last)
                    tile(mri, kc, xi, J->ldx, bk, cin, pp, CALM_PANEL, NULL, 0, CALM_PANEL);
                else if (argmax) {
                    tile(mri, kc, xi, J->ldx, bk, cin, abuf, CALM_PANEL, NULL, 0, CALM_PANEL);
                    for (int r = 0; r < mri; r++)
                        reduce_row(abuf + (size_t)r * CALM_PANEL, ncols, p * CALM_PANEL, &bv[i + r], &bi[i + r]);
                } else
                    tile(mri, kc, xi, J->ldx, bk, cin, J->y + (size_t)i * J->ldy + (size_t)p * CALM_PANEL, J->ldy,
                         J->bias ? J->bias + (size_t)p * CALM_PANEL : NULL, J->accumulate, ncols);
            }
        }
    }
    if (part && part != stack_part) free(part);
}

static void plan(linear_job *J, calm_pool *pool, const calm_gemm_impl *impl) {
    const calm_matrix *w = J->w;
    J->impl = impl;
    J->n_panels = (w->n + CALM_PANEL - 1) / CALM_PANEL;
    int threads = calm_pool_size(pool);
    double flops = 2.0 * (double)J->m * (double)w->n * (double)w->k;
    J->split_rows = 0;
    J->n_tasks = 1;
    if (threads > 1 && flops >= SERIAL_FLOPS) {
        if (J->n_panels >= threads) {
            /* big products: a few contiguous ranges per thread, claimed dynamically, so a thread
               that loses its core for a while (shared machines) does not hold up the others */
            J->n_tasks = flops >= 5e7 && J->n_panels >= 8 * threads ? 4 * threads : threads;
        } else if (J->m >= 2 * J->impl->mr) {
            J->split_rows = 1;
            int tiles = (J->m + J->impl->mr - 1) / J->impl->mr;
            J->n_tasks = tiles < threads ? tiles : threads;
        } else {
            J->n_tasks = J->n_panels;
        }
    }
}

void calm_linear(calm_pool *pool, const float *x, int32_t m, size_t ldx, const calm_matrix *w, const float *bias,
                 float *y, size_t ldy, int accumulate) {
    calm__linear_impl(calm__gemm_active(), pool, x, m, ldx, w, bias, y, ldy, accumulate);
}

void calm__linear_impl(const calm_gemm_impl *impl, calm_pool *pool, const float *x, int32_t m, size_t ldx,
                       const calm_matrix *w, const float *bias, float *y, size_t ldy, int accumulate) {
    if (m <= 0 || w->n <= 0) return;
    if (w->k <= 0) { /* empty sum: y (op)= 0 + bias */
        for (int32_t i = 0; i < m; i++)
            for (int32_t j = 0; j < w->n; j++) {
                float v = bias ? 0.0f + bias[j] : 0.0f;
                y[(size_t)i * ldy + j] = accumulate ? y[(size_t)i * ldy + j] + v : v;
            }
        return;
    }
    linear_job J;
    memset(&J, 0, sizeof J);
    J.x = x; J.m = m; J.ldx = ldx; J.w = w; J.bias = bias; J.y = y; J.ldy = ldy; J.accumulate = accumulate;
    plan(&J, pool, impl);
    if (J.n_tasks == 1) linear_task(&J, 0, 0);
    else calm_pool_run(pool, J.n_tasks, linear_task, &J);
}

void calm_linear_argmax(calm_pool *pool, const float *x, int32_t m, size_t ldx, const calm_matrix *w,
                        int32_t *out_index, float *out_max) {
    if (m <= 0) return;
    if (w->n <= 0 || w->k <= 0) {
        for (int32_t i = 0; i < m; i++) {
            out_index[i] = 0;
            if (out_max) out_max[i] = w->n > 0 ? 0.0f : -INFINITY;
        }
        return;
    }
    linear_job J;
    memset(&J, 0, sizeof J);
    J.x = x; J.m = m; J.ldx = ldx; J.w = w;
    plan(&J, pool, calm__gemm_active());
    J.best_v = (float *)malloc((size_t)J.n_tasks * (size_t)m * sizeof(float));
    J.best_i = (int32_t *)malloc((size_t)J.n_tasks * (size_t)m * sizeof(int32_t));
    if (J.n_tasks == 1) linear_task(&J, 0, 0);
    else calm_pool_run(pool, J.n_tasks, linear_task, &J);
    for (int32_t i = 0; i < m; i++) {
        float best = 0;
        int32_t idx = -1;
        for (int t = 0; t < J.n_tasks; t++) {
            int32_t r0 = 0, r1 = m, p0 = 0, p1 = J.n_panels;
            if (J.split_rows) task_range(t, J.n_tasks, m, J.impl->mr, &r0, &r1);
            else task_range(t, J.n_tasks, J.n_panels, 1, &p0, &p1);
            if (i < r0 || i >= r1 || p0 >= p1) continue;
            float v = J.best_v[(size_t)t * m + i];
            if (idx < 0 || calm__argmax_better(v, best)) { best = v; idx = J.best_i[(size_t)t * m + i]; }
        }
        out_index[i] = idx;
        if (out_max) out_max[i] = best;
    }
    free(J.best_v);
    free(J.best_i);
}
