/* Private declarations shared by the CALMKernels C files (not part of the public header). */
#ifndef CALM_INTERNAL_H
#define CALM_INTERNAL_H

#include "calm_kernels.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define CALM_X86 1
#define CALM_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#define CALM_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define CALM_TARGET_AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))
#else
#define CALM_X86 0
#endif

/* Full unrolling of the loops over a register tile's rows: the accumulators must stay in
   registers (clang keeps a loop, and the accumulators on the stack, past ~10 rows without it) */
#if defined(__clang__)
#define CALM_UNROLL _Pragma("clang loop unroll(full)")
#elif defined(__GNUC__)
#define CALM_UNROLL _Pragma("GCC unroll 16")
#else
#define CALM_UNROLL
#endif

/* Sets the calling thread's ISA override (-1: none); the pool's workers take their caller's. */
void calm__isa_set_thread_override(int isa);
/* The active ISA, read on every kernel call (relaxed; set at start-up or by calm_isa_force). */
calm_isa calm__isa(void);

/*
 * GEMM tile kernel: rows [0, mr) of x (x points at x[i0][k0], row stride ldx) times one packed
 * panel (b points at group k0 of the panel, elements of the kernel's dtype) over kc values of k.
 * acc starts at cin[r*32 + c] when cin != NULL (a partial sum from earlier K blocks), else 0, and
 * runs one FMA per k in increasing order. Then:
 *   out[r*ldo + c] = accumulate ? out[r*ldo + c] + (acc + bias[c]) : acc + bias[c]   (bias optional)
 * for c < ncols. cin may equal out (ldo must then be 32). mr <= the ISA's tile rows.
 */
typedef void (*calm_tile_fn)(int mr, int kc, const float *x, size_t ldx, const void *b, const float *cin,
                             float *out, size_t ldo, const float *bias, int accumulate, int ncols);

/*
 * One row over two consecutive panels and all of K (the decode path: twice the independent FMA
 * chains of a one-panel tile). b0 / b1 point at the panels; out receives ncols (<= 64) columns:
 * out[c] = accumulate ? out[c] + (acc + bias[c]) : acc + bias[c].
 */
typedef void (*calm_row2_fn)(int k, const float *x, const void *b0, const void *b1, float *out,
                             const float *bias, int accumulate, int ncols);

/*
 * A tile (as calm_tile_fn) that also prefetches `pf_lines` cache lines from pf into L2, spread over
 * its k loop: the driver's streaming path for products with few rows, whose weights come from
 * memory, hands each tile a share of the next block so the loads overlap the FMAs.
 */
typedef void (*calm_tile_pf_fn)(int mr, int kc, const float *x, size_t ldx, const void *b, const float *cin,
                                float *out, size_t ldo, const float *bias, int accumulate, int ncols, const void *pf,
                                int pf_lines);

typedef struct {
    int mr;                   /* rows per register tile */
    int kc[3];                /* K block for many-row products, by calm_dtype */
    calm_tile_fn tile[3];     /* by calm_dtype */
    calm_row2_fn row2[3];     /* optional (NULL: one-panel tiles) */
    calm_tile_pf_fn tile_pf[3]; /* optional (NULL: no streaming path; K-blocked tiles for every m) */
} calm_gemm_impl;

extern const calm_gemm_impl calm__gemm_portable;
#if CALM_X86
extern const calm_gemm_impl calm__gemm_avx2;
extern const calm_gemm_impl calm__gemm_avx512;
void calm__row2_f32_avx2(int k, const float *x, const void *b0, const void *b1, float *out, const float *bias,
                         int accumulate, int ncols);
void calm__row2_f16_avx2(int k, const float *x, const void *b0, const void *b1, float *out, const float *bias,
                         int accumulate, int ncols);
void calm__row2_bf16_avx2(int k, const float *x, const void *b0, const void *b1, float *out, const float *bias,
                          int accumulate, int ncols);
#endif

#if CALM_X86
void calm__silu_avx2(const float *x, float *y, size_t n);
void calm__swiglu_avx2(const float *gate, const float *up, float *y, size_t n);
void calm__gelu_tanh_avx2(const float *x, float *y, size_t n);
void calm__add_avx2(const float *a, const float *b, float *y, size_t n);
float calm__dot_avx2(const float *a, const float *b, int32_t n);
void calm__axpy_avx2(float alpha, const float *x, float *y, int32_t n);
void calm__rmsnorm_avx2(const float *x, const float *w, float *y, int32_t rows, int32_t n, float eps);
void calm__layernorm_avx2(const float *x, const float *w, const float *b, float *y, int32_t rows, int32_t n, float eps);
void calm__softmax_avx2(float *x, int32_t n);
void calm__attention_rows_avx2(const float *q, size_t q_stride, int32_t rows, int32_t head_dim, float scale,
                               const float *const *k_blocks, const float *const *v_blocks, int32_t block_len,
                               size_t pos_stride, int32_t first_keys, float *scores, float *out, size_t out_stride);
void calm__attention_rows_heads_avx2(const float *q, size_t q_stride, int32_t rows, int32_t n_heads, int32_t n_kv_heads,
                                     int32_t head_dim, float scale, const float *const *k_blocks,
                                     const float *const *v_blocks, int32_t block_len, size_t pos_stride,
                                     int32_t first_keys, float *scores, float *out, size_t out_stride);
int32_t calm__argmax_avx2(const float *x, int32_t n);
#define CALM_USE_AVX2() (calm__isa() >= CALM_ISA_AVX2)
#else
#define CALM_USE_AVX2() 0
#endif

/* calm_linear with the given tile implementation instead of the active ISA's (ISA timing) */
void calm__linear_impl(const calm_gemm_impl *impl, calm_pool *pool, const float *x, int32_t m, size_t ldx,
                       const calm_matrix *w, const float *bias, float *y, size_t ldy, int accumulate);

/* Best-of-several single-thread time (seconds) of a small f32 + bf16 many-row multiply for each of
   n implementations, interleaved so that frequency changes and noise hit all alike (isa_timing.c) */
void calm__time_gemm_impls(const calm_gemm_impl *const *impls, int n, double *seconds);

/* 1 when impl's tiles match the portable tiles bit for bit (gemm_selftest.c) */
int calm__gemm_selftest(const calm_gemm_impl *impl);

/* ---- screened argmax (screen.c, screen_avx2.c, screen_avx512.c) */

/* Per-row figures of quantised activations, for the bound: x~ = s * (v + z), and the raw integer sums
   of a tile become T = raw + z * colsum[j] + corr = sum_k (v_k + z) * q_jk. */
typedef struct {
    float s;      /* step */
    float A;      /* multiplies rho_j (||x~|| with slack) */
    float Bc;     /* multiplies omega_j (||x - x~|| + gamma_k ||x||, with slack) */
    int32_t z;    /* zero point */
    int32_t corr; /* -128 * sum v for the VNNI scheme (weights read as q + 128), else 0 */
    int32_t pad_;
} calm__screen_row;

/* One panel's column figures (32 each, zero past n). */
typedef struct {
    const float *sigma;    /* weight step */
    const int32_t *colsum; /* sum of the row's quantised weights */
    const float *rho;      /* ||w - sigma * q|| rounded up */
    const float *omega;    /* ||w|| rounded up */
    float rho_max, omega_max; /* the panel's largest rho and omega (a bound for all its columns at once) */
} calm__screen_cols;

/* Quantised weights are integers in [-CALM_SCREEN_QMAX, CALM_SCREEN_QMAX] (step: a row's max |w| / QMAX).
   7 bits: with activations in [0, 127] two vpmaddubsw results add in 16 bits without saturating
   (2 * 2 * 127 * 64 = 32512 < 32768), so AVX2 widens once per 8 k values instead of once per 4. */
#define CALM_SCREEN_QMAX 64

/* The bound's constant term: covers k * 2^-149 (underflow of the exact chain) for every k allowed. */
#define CALM_SCREEN_E 0x1p-100f

/*
 * Integer tile: out[r * 32 + c] = sum over the k groups of the panel of the 4 byte products of row r of v
 * (row stride ldv bytes) and column c (scheme 0: v as u8 times q as s8; scheme 1: v as s8 times q + 128
 * as u8), r < mr. pf: prefetch the panel ahead (one row streaming a matrix from memory).
 */
typedef void (*calm__screen_tile_fn)(int mr, int groups, const uint8_t *v, size_t ldv, const int8_t *panel,
                                     int32_t *out, int pf);
/*
 * Bounds of a tile: for r < mr and c < ncols, q = float(T) * (s * sigma), B = A * rho + (Bc * omega + E),
 * U = q + B, L = q - B; lstar[r] = max(lstar[r], max_c L); u[r * 32 + c] = U; mask[r] bit c set when
 * U >= the updated lstar[r]; l[r * 32 + c] = L when l != NULL (calm_screen_check_bounds). Columns >= ncols
 * take no part. A kernel may first bound the whole panel with rho_max and omega_max (B_max >= every B as
 * floats, rounding being monotone): when max q + B_max < lstar no column can be a candidate, and
 * max q - B_max is then a valid (weaker) lower bound to update lstar with; u is not written then.
 */
typedef void (*calm__screen_finish_fn)(int mr, const int32_t *raw, const calm__screen_row *rows,
                                       const calm__screen_cols *cols, int ncols, float *lstar, float *u,
                                       uint32_t *mask, float *l);
typedef struct {
    const char *name;
    int scheme; /* 0: v = u8 in [0, 127] (vpmaddubsw: pairs stay below 2^15); 1: v = s8 in [-127, 127] (VNNI) */
    int mr;     /* most rows per tile (<= 12) */
    calm__screen_tile_fn tile;
    calm__screen_finish_fn finish;
} calm__screen_impl;

extern const calm__screen_impl calm__screen_portable;
#if CALM_X86
/* Row quantisation helpers (screen.c's quantise_row uses them at AVX2 and above). scan: min(x, 0),
   max(x, 0) and sum x^2 (double) of k values; returns 0 when one is not finite. quant: v = the grid
   index of each x (x * inv - z rounded, clamped to [vmin, 127]), and in double the sums of
   (s (v + z))^2 and of the residual (x - s (v + z))^2, and sum v. */
int calm__screen_scan_avx2(const float *x, int32_t k, float *lo, float *hi, double *x2);
/* Quantises one panel at build time: buf holds its k x 32 weights as f32 (packed order), cols of them
   real. Writes the 7-bit panel (zeroed first) and per column sigma and the integer sum, and returns in
   w2 / r2 sums of squares of the weights and residuals computed in f32 (callers bound them: see
   screen.c). 0 when a weight is not finite. */
int calm__screen_build_panel_avx2(const float *buf, int32_t k, int cols, int8_t *panel, float *sigma, int32_t *colsum,
                                  float *w2, float *r2);
void calm__screen_quant_avx2(const float *x, int32_t k, float s, int32_t z, int32_t vmin, uint8_t *v, double *xt2,
                             double *r2, int64_t *sumv);
extern const calm__screen_impl calm__screen_avx2;
extern const calm__screen_impl calm__screen_avx512_vnni;
void calm__screen_finish_avx2(int mr, const int32_t *raw, const calm__screen_row *rows, const calm__screen_cols *cols,
                              int ncols, float *lstar, float *u, uint32_t *mask, float *l);
#endif

/* The active ISA's GEMM tiles (what calm_linear runs) */
const calm_gemm_impl *calm__gemm_active(void);

/* Scalar conversions shared by the portable paths. */
static inline float calm__bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v = { (uint32_t)h << 16 };
    return v.f;
}
float calm__f16_to_f32(uint16_t h);
uint16_t calm__f32_to_f16(float f);
uint16_t calm__f32_to_bf16(float f);

/* NaN counts as larger than every number; among equals the earlier index wins. */
static inline int calm__argmax_better(float v, float best) {
    return v > best || (v != v && best == best);
}

#endif
