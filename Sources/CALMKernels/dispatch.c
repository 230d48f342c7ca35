/* ISA detection and the forced-ISA switch used by tests and benchmarks. */
#include "internal.h"
#include <stdatomic.h>
#include <stdio.h>

static _Atomic int g_detected = -1;
static _Atomic int g_active = -1;

calm_isa calm_isa_detected(void) {
    int d = atomic_load_explicit(&g_detected, memory_order_relaxed);
    if (d >= 0) return (calm_isa)d;
    d = CALM_ISA_PORTABLE;
#if CALM_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) d = CALM_ISA_AVX2;
    if (d == CALM_ISA_AVX2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        d = CALM_ISA_AVX512;
    /* the AVX-512 tiles must match the portable FMA chains bit for bit; otherwise stay on AVX2 */
    if (d == CALM_ISA_AVX512 && !calm__gemm_selftest(&calm__gemm_avx512)) {
        fprintf(stderr, "CALMKernels: AVX-512 self-check failed; using AVX2 kernels\n");
        d = CALM_ISA_AVX2;
    }
#endif
    atomic_store_explicit(&g_detected, d, memory_order_relaxed);
    return (calm_isa)d;
}

calm_isa calm__isa(void) {
    int a = atomic_load_explicit(&g_active, memory_order_relaxed);
    if (a >= 0) return (calm_isa)a;
    int expected = -1;
    int d = (int)calm_isa_detected();
    atomic_compare_exchange_strong(&g_active, &expected, d);
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
