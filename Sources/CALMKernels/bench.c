/* Benchmark helpers: register-only FMA peak and STREAM triad, both run on the pool. */
#include "internal.h"
#include <stdlib.h>
#include <time.h>
#if CALM_X86
#include <immintrin.h>
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct { long iters; int isa; double sink[64]; } fma_job;

#define FMA_CHAINS 12

#if CALM_X86
CALM_TARGET_AVX512 static double fma_loop_avx512(long iters) {
    __m512 acc[FMA_CHAINS];
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < FMA_CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
        for (int i = 0; i < FMA_CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
        __asm__ volatile("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]), "+v"(acc[4]), "+v"(acc[5]),
                         "+v"(acc[6]), "+v"(acc[7]), "+v"(acc[8]), "+v"(acc[9]), "+v"(acc[10]), "+v"(acc[11]));
    }
    __m512 s = acc[0];
    for (int i = 1; i < FMA_CHAINS; i++) s = _mm512_add_ps(s, acc[i]);
    return (double)_mm512_reduce_add_ps(s);
}
CALM_TARGET_AVX2 static double fma_loop_avx2(long iters) {
    __m256 acc[FMA_CHAINS];
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < FMA_CHAINS; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
        for (int i = 0; i < FMA_CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
        __asm__ volatile("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]), "+v"(acc[4]), "+v"(acc[5]),
                         "+v"(acc[6]), "+v"(acc[7]), "+v"(acc[8]), "+v"(acc[9]), "+v"(acc[10]), "+v"(acc[11]));
    }
    __m256 s = acc[0];
    for (int i = 1; i < FMA_CHAINS; i++) s = _mm256_add_ps(s, acc[i]);
    float t[8];
    _mm256_storeu_ps(t, s);
    return (double)(t[0] + t[7]);
}
#endif

static double fma_loop_scalar(long iters) {
    float acc[FMA_CHAINS];
    for (int i = 0; i < FMA_CHAINS; i++) acc[i] = (float)i;
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < FMA_CHAINS; i++) acc[i] = acc[i] * 0.999999f + 1e-7f;
    double s = 0;
    for (int i = 0; i < FMA_CHAINS; i++) s += acc[i];
    return s;
}

static int lanes(int isa) { return isa == CALM_ISA_AVX512 ? 16 : isa == CALM_ISA_AVX2 ? 8 : 1; }

static void fma_task(void *ctx, int t, int thread) {
    (void)thread;
    fma_job *J = (fma_job *)ctx;
    double r;
#if CALM_X86
    if (J->isa == CALM_ISA_AVX512) r = fma_loop_avx512(J->iters);
    else if (J->isa == CALM_ISA_AVX2) r = fma_loop_avx2(J->iters);
    else r = fma_loop_scalar(J->iters);
#else
    r = fma_loop_scalar(J->iters);
#endif
    J->sink[t & 63] = r;
}

double calm_bench_fma_peak(calm_pool *pool, double seconds) {
    fma_job J = { 0 };
    J.isa = (int)calm__isa();
    int threads = calm_pool_size(pool);
    /* calibrate on the caller */
    J.iters = 1 << 16;
    double t0 = now_s();
    fma_task(&J, 0, 0);
    double dt = now_s() - t0;
    while (dt < 0.02) {
        J.iters *= 2;
        t0 = now_s();
        fma_task(&J, 0, 0);
        dt = now_s() - t0;
    }
    J.iters = (long)((double)J.iters * (seconds / dt / 3));
    if (J.iters < 1) J.iters = 1;
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        t0 = now_s();
        calm_pool_run(pool, threads, fma_task, &J);
        dt = now_s() - t0;
        double g = (double)J.iters * FMA_CHAINS * lanes(J.isa) * 2.0 * threads / dt * 1e-9;
        if (g > best) best = g;
    }
    return best;
}

typedef struct { float *a, *b, *c; size_t n; int parts; } triad_job;

#if CALM_X86
CALM_TARGET_AVX512 static void triad_avx512(float *a, const float *b, const float *c, size_t n) {
    const __m512 s = _mm512_set1_ps(3.0f);
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(a + i, _mm512_fmadd_ps(s, _mm512_loadu_ps(c + i), _mm512_loadu_ps(b + i)));
    for (; i < n; i++) a[i] = b[i] + 3.0f * c[i];
}
#endif

static void triad_task(void *ctx, int t, int thread) {
    (void)thread;
    triad_job *J = (triad_job *)ctx;
    size_t lo = J->n * (size_t)t / (size_t)J->parts, hi = J->n * (size_t)(t + 1) / (size_t)J->parts;
    lo &= ~(size_t)15;
    if (t + 1 < J->parts) hi &= ~(size_t)15;
#if CALM_X86
    if (calm__isa() == CALM_ISA_AVX512) {
        triad_avx512(J->a + lo, J->b + lo, J->c + lo, hi - lo);
        return;
    }
#endif
    for (size_t i = lo; i < hi; i++) J->a[i] = J->b[i] + 3.0f * J->c[i];
}

static void init_task(void *ctx, int t, int thread) {
    (void)thread;
    triad_job *J = (triad_job *)ctx;
    size_t lo = J->n * (size_t)t / (size_t)J->parts, hi = J->n * (size_t)(t + 1) / (size_t)J->parts;
    lo &= ~(size_t)15;
    if (t + 1 < J->parts) hi &= ~(size_t)15;
    for (size_t i = lo; i < hi; i++) { J->a[i] = 0; J->b[i] = 1; J->c[i] = 2; }
}

double calm_bench_stream_triad(calm_pool *pool, size_t n, double seconds) {
    triad_job J;
    J.n = n;
    J.parts = calm_pool_size(pool);
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    J.a = (float *)aligned_alloc(64, bytes);
    J.b = (float *)aligned_alloc(64, bytes);
    J.c = (float *)aligned_alloc(64, bytes);
    if (!J.a || !J.b || !J.c) { free(J.a); free(J.b); free(J.c); return 0; }
    calm_pool_run(pool, J.parts, init_task, &J); /* first touch by the threads that use the pages */
    double best = 0, start = now_s();
    int reps = 0;
    while (reps < 3 || now_s() - start < seconds) {
        double t0 = now_s();
        calm_pool_run(pool, J.parts, triad_task, &J);
        double dt = now_s() - t0;
        double g = 12.0 * (double)n / dt * 1e-9;
        if (g > best) best = g;
        reps++;
    }
    free(J.a); free(J.b); free(J.c);
    return best;
}
