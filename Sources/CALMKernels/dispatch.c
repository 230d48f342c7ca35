/*
 * ISA selection, done once per process under pthread_once:
 *   1. detect what the CPU supports (__builtin_cpu_supports);
 *   2. self-check every SIMD GEMM implementation bit for bit against the portable tiles
 *      (gemm_selftest.c); one that fails is never used;
 *   3. take CALM_ISA=portable|avx2|avx512 when set, else time the candidates on a small
 *      representative multiply (isa_timing.c) and keep the fastest.
 * Every level runs the same FMA chains, so the choice changes speed, never calm_linear results.
 * calm_isa_force (tests, benchmarks) overrides the choice afterwards.
 */
#include "internal.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_detected = CALM_ISA_PORTABLE; /* best level supported that passed its self-check */
static int g_default = CALM_ISA_PORTABLE;  /* the level chosen at start-up */
static char g_selection[256] = "portable";
static _Atomic int g_active = -1;
/* calm_isa_force_thread: a level for the calling thread only (tests that compare levels while other
   work runs in the process); the pool carries it to its workers for the caller's jobs */
static _Thread_local int t_override = -1;
/* set on the thread running select_isa: kernels it calls (weight packing) use portable code
   instead of re-entering pthread_once */
static _Thread_local int t_selecting = 0;

static int parse_isa_name(const char *s) {
    if (!s) return -1;
    if (strcmp(s, "portable") == 0) return CALM_ISA_PORTABLE;
    if (strcmp(s, "avx2") == 0) return CALM_ISA_AVX2;
    if (strcmp(s, "avx512") == 0) return CALM_ISA_AVX512;
    return -1;
}

static const calm_gemm_impl *impl_for(int isa) {
#if CALM_X86
    if (isa == CALM_ISA_AVX512) return &calm__gemm_avx512;
    if (isa == CALM_ISA_AVX2) return &calm__gemm_avx2;
#endif
    (void)isa;
    return &calm__gemm_portable;
}

static void select_isa(void) {
    int supported = CALM_ISA_PORTABLE;
#if CALM_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) supported = CALM_ISA_AVX2;
    if (supported == CALM_ISA_AVX2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        supported = CALM_ISA_AVX512;
#endif
    /* a SIMD level whose tiles do not reproduce the portable FMA chains bit for bit is never used
       (the levels above it are not either: each builds on the one below) */
    int detected = CALM_ISA_PORTABLE;
    for (int isa = CALM_ISA_AVX2; isa <= supported; isa++) {
        if (!calm__gemm_selftest(impl_for(isa))) {
            fprintf(stderr, "CALMKernels: the %s GEMM self-check failed; not using %s kernels\n", calm_isa_name((calm_isa)isa),
                    calm_isa_name((calm_isa)isa));
            break;
        }
        detected = isa;
    }
    g_detected = detected;

    const char *env = getenv("CALM_ISA");
    if (env && *env) {
        int want = parse_isa_name(env);
        if (want < 0) {
            fprintf(stderr, "CALMKernels: CALM_ISA='%s' is not one of portable, avx2, avx512; ignoring it\n", env);
        } else {
            g_default = want <= detected ? want : detected;
            if (want > detected) {
                fprintf(stderr, "CALMKernels: CALM_ISA=%s is not available on this CPU; using %s\n", env,
                        calm_isa_name((calm_isa)g_default));
                snprintf(g_selection, sizeof g_selection, "%s (CALM_ISA=%s is not available here)",
                         calm_isa_name((calm_isa)g_default), env);
            } else {
                snprintf(g_selection, sizeof g_selection, "%s (CALM_ISA=%s)", calm_isa_name((calm_isa)g_default), env);
            }
            return;
        }
    }
    if (detected == CALM_ISA_PORTABLE) {
        g_default = CALM_ISA_PORTABLE;
        snprintf(g_selection, sizeof g_selection, "portable (no AVX2+FMA on this CPU)");
        return;
    }
    if (detected == CALM_ISA_AVX2) {
        g_default = CALM_ISA_AVX2;
        snprintf(g_selection, sizeof g_selection, "avx2 (the only SIMD level on this CPU)");
        return;
    }
    /* several SIMD levels: the fastest on this machine wins (AVX-512 is not faster everywhere) */
    const calm_gemm_impl *candidates[2] = { &calm__gemm_avx2, impl_for(CALM_ISA_AVX512) };
    double seconds[2];
    calm__time_gemm_impls(candidates, 2, seconds);
    g_default = seconds[1] < seconds[0] ? CALM_ISA_AVX512 : CALM_ISA_AVX2;
    snprintf(g_selection, sizeof g_selection, "%s (measured: avx512 %.3f ms, avx2 %.3f ms)",
             calm_isa_name((calm_isa)g_default), seconds[1] * 1e3, seconds[0] * 1e3);
}

static void select_isa_once(void) {
    t_selecting = 1;
    select_isa();
    t_selecting = 0;
}

static void ensure_selected(void) { pthread_once(&g_once, select_isa_once); }

calm_isa calm_isa_detected(void) {
    ensure_selected();
    return (calm_isa)g_detected;
}

calm_isa calm_isa_default(void) {
    ensure_selected();
    return (calm_isa)g_default;
}

const char *calm_isa_selection(void) {
    ensure_selected();
    return g_selection;
}

calm_isa calm__isa(void) {
    if (t_override >= 0) return (calm_isa)t_override;
    int a = atomic_load_explicit(&g_active, memory_order_relaxed);
    if (a >= 0) return (calm_isa)a;
    if (t_selecting) return CALM_ISA_PORTABLE;
    ensure_selected();
    int expected = -1;
    atomic_compare_exchange_strong(&g_active, &expected, g_default);
    return (calm_isa)atomic_load_explicit(&g_active, memory_order_relaxed);
}

calm_isa calm_isa_active(void) { return calm__isa(); }

void calm_isa_force(calm_isa isa) {
    int d = (int)calm_isa_detected();
    int v = (int)isa;
    if (v < 0) v = 0;
    if (v > d) v = d;
    atomic_store_explicit(&g_active, v, memory_order_relaxed);
}

void calm_isa_force_thread(int isa) {
    if (isa < 0) { t_override = -1; return; }
    int d = (int)calm_isa_detected();
    t_override = isa > d ? d : isa;
}

int calm_isa_thread_override(void) { return t_override; }

void calm__isa_set_thread_override(int isa) { t_override = isa; }

int calm_isa_parse(const char *name) { return parse_isa_name(name); }

double calm_isa_time_ms(calm_isa isa) {
    int level = (int)isa;
    if (level > (int)calm_isa_detected()) level = (int)calm_isa_detected();
    const calm_gemm_impl *impl = impl_for(level);
    double seconds = 0;
    calm__time_gemm_impls(&impl, 1, &seconds);
    return seconds * 1e3;
}

const char *calm_isa_name(calm_isa isa) {
    switch (isa) {
    case CALM_ISA_AVX512: return "avx512";
    case CALM_ISA_AVX2: return "avx2";
    default: return "portable";
    }
}

size_t calm_dtype_size(calm_dtype dtype) {
    switch (dtype) {
    case CALM_F16:
    case CALM_BF16: return 2;
    default: return 4;
    }
}
