/* AVX-512 tile kernels (placeholder: portable kernels until the SIMD ones land). */
#include "internal.h"
#if CALM_X86
const calm_gemm_impl calm__gemm_avx512 = { 4, 256, { 0 } };
#endif
