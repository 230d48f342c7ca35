/*
 * CALMKernels: the numeric hot loops of swift-calm.
 *
 * Every kernel has SIMD variants (AVX-512 and/or AVX2, function target attributes, no build flags)
 * and a portable C fallback; the level is chosen once per process (see calm_isa_selection) and
 * can be forced for tests and benchmarks. Compute is always f32; weights may be stored as f32, f16 or bf16.
 *
 * Determinism contract (the engine's batch invariance rests on it): for a given ISA level, every
 * output element of calm_linear / calm_linear_argmax is one FMA chain over k in increasing order,
 * starting from 0, with the bias added last. A row's result never depends on m, on the other rows
 * of x, on the panel split between threads, or on the pool size. calm_linear_argmax_screened gives
 * calm_linear_argmax's index and maximum for every row (its screen only decides which chains to run).
 */
#ifndef CALM_KERNELS_H
#define CALM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- dtypes and dispatch */

typedef enum { CALM_F32 = 0, CALM_F16 = 1, CALM_BF16 = 2 } calm_dtype;

typedef enum { CALM_ISA_PORTABLE = 0, CALM_ISA_AVX2 = 1, CALM_ISA_AVX512 = 2 } calm_isa;

/**
 * ISA selection. Once per process, at the first kernel call (thread-safe): detect what the CPU
 * supports, self-check each SIMD level's GEMM tiles bit for bit against the portable ones (a level
 * that fails is never used), then take $CALM_ISA (portable | avx2 | avx512, clamped to what is
 * available) when set, else time each remaining SIMD level on a small many-row multiply (a few
 * milliseconds) and keep the fastest: AVX-512 is not faster on every CPU that has it.
 */
/** Best ISA level this CPU supports whose self-check passed. */
calm_isa calm_isa_detected(void);
/** Level chosen at start-up ($CALM_ISA or the measured fastest). */
calm_isa calm_isa_default(void);
/** ISA level the kernels currently use (the default unless calm_isa_force changed it). */
calm_isa calm_isa_active(void);
/**
 * How the default was chosen, for logs and benchmark headers, e.g.
 * "avx2 (measured: avx512 0.081 ms, avx2 0.052 ms)" or "avx2 (CALM_ISA=avx2)". Static storage.
 */
const char *calm_isa_selection(void);
/**
 * Use another ISA level (clamped to the detected one); for tests and benchmarks. Process-global:
 * not meant to be changed while other threads run kernels. calm_linear results do not depend on
 * the level (every level runs the same FMA chains); row ops may differ in the last bits between
 * portable and SIMD (AVX-512 uses the AVX2 row ops).
 */
void calm_isa_force(calm_isa isa);
/** Forces `isa` (clamped to what the CPU supports) for the calling thread only, and for the pool
 *  tasks it starts; a negative value goes back to the process-wide level. Lets a test compare
 *  levels while other work in the process keeps the process-wide level. */
void calm_isa_force_thread(int isa);
/** The calling thread's own level set by calm_isa_force_thread, or -1. */
int calm_isa_thread_override(void);
/** "avx512", "avx2" or "portable". */
const char *calm_isa_name(calm_isa isa);
/** The level named "portable", "avx2" or "avx512"; -1 for any other string. */
int calm_isa_parse(const char *name);
/** Milliseconds of the start-up choice's representative multiply on `isa` (clamped to the detected
 *  level): the figure the measured choice compares. */
double calm_isa_time_ms(calm_isa isa);

/** Bytes per element of a storage dtype. */
size_t calm_dtype_size(calm_dtype dtype);
/** Widens n elements of f32/f16/bf16 to f32. */
void calm_convert_to_f32(const void *src, calm_dtype src_dtype, float *dst, size_t n);
/** Narrows n f32 values to f32/f16/bf16 with round-to-nearest-even (NaN stays NaN, overflow -> inf,
 *  f16 subnormals exact). */
void calm_convert_from_f32(const float *src, void *dst, calm_dtype dst_dtype, size_t n);

/* ---------------------------------------------------------------- worker pool */

/**
 * A persistent pool: the calling thread plus (n_threads - 1) workers that spin briefly on an
 * atomic after each run and then park. One run at a time per pool (concurrent callers are
 * serialised by a mutex).
 */
typedef struct calm_pool calm_pool;
typedef void (*calm_task_fn)(void *ctx, int task_index, int thread_index);

/** n_threads <= 0 means one thread per online CPU. */
calm_pool *calm_pool_create(int n_threads);
void calm_pool_destroy(calm_pool *pool);
/** Total threads that run tasks (the caller included); 1 for a NULL pool. */
int calm_pool_size(const calm_pool *pool);
/**
 * Runs fn(ctx, i, thread) for i in [0, n_tasks) and returns when all are done. NULL pool: serial.
 * thread is in [0, calm_pool_size) and unique among tasks running at the same time (0 = caller).
 * A call from inside one of this pool's own tasks runs its tasks serially on that thread.
 */
void calm_pool_run(calm_pool *pool, int n_tasks, calm_task_fn fn, void *ctx);

/* ---------------------------------------------------------------- packed weight matrices */

/** Columns per packed panel. */
#define CALM_PANEL 32

/**
 * A weight matrix W of shape (n, k) (PyTorch Linear layout: out x in) packed for y = x * W^T.
 * Layout: ceil(n / 32) panels; panel p stores columns [32p, 32p + 32) as k consecutive groups of
 * 32 elements of `dtype` (group kk holds W[32p + c][kk] for c = 0..31; zero past n).
 * `data` must be calm_matrix_packed_bytes(n, k, dtype) long; 64-byte alignment is recommended
 * (cache-line-aligned panels) but not required.
 */
typedef struct {
    int32_t n;
    int32_t k;
    calm_dtype dtype;
    void *data;
} calm_matrix;

size_t calm_matrix_packed_bytes(int32_t n, int32_t k, calm_dtype dtype);

/**
 * Packs row-major W (n rows of k elements of src_dtype, row stride src_row_stride elements) into
 * dst, converting to dst->dtype (round to nearest even). dst->n, dst->k, dst->dtype, dst->data set
 * by the caller.
 */
void calm_matrix_pack(calm_matrix *dst, const void *src, calm_dtype src_dtype, size_t src_row_stride);

/** Reads back row j of a packed matrix as f32 (k values); for tests and embedding-style lookups. */
void calm_matrix_unpack_row(const calm_matrix *w, int32_t j, float *out);

/**
 * y[i][j] (op)= sum_kk x[i][kk] * W[j][kk] + bias[j], for i < m, j < w->n.
 * x rows have stride ldx floats, y rows stride ldy. bias may be NULL. accumulate != 0 adds the
 * result to y (residual connections). Splits column panels across the pool (NULL: one thread).
 * m == 1 and small m take a streaming path; all paths give bit-identical rows (see header note):
 * y[i][j] = accumulate ? y[i][j] + (acc + bias[j]) : acc + bias[j], acc = fma chain over kk from 0.
 * y must not overlap x. k == 0 gives acc = 0.
 */
void calm_linear(calm_pool *pool, const float *x, int32_t m, size_t ldx, const calm_matrix *w,
                 const float *bias, float *y, size_t ldy, int accumulate);

/**
 * Row-wise argmax of x * W^T without materialising the product (the decoder's vocabulary
 * projection). out_index[i] = smallest j attaining the maximum, exactly as argmax over the output of
 * calm_linear (no bias) would give. NaN counts as larger than any number (the first NaN wins, as
 * torch.argmax does), like calm_argmax. out_max (the maximum, bit-exact) may be NULL.
 */
void calm_linear_argmax(calm_pool *pool, const float *x, int32_t m, size_t ldx, const calm_matrix *w,
                        int32_t *out_index, float *out_max);

/* ---------------------------------------------------------------- screened exact argmax */

/**
 * Screening data of a packed matrix for calm_linear_argmax_screened: W quantised to 7-bit integers
 * (|q| <= 64, one byte each) with one step per row (the row's max |w| / 64), in 32-column panels of
 * 4-value k groups (128 bytes per group and panel), plus per row the integer sum of its quantised values,
 * ||w||_2 and the quantisation residual's ||w - step * q||_2 (both computed in double and rounded up).
 * n * ceil(k / 4) * 4 bytes for the panels (columns padded to whole panels) + 16 bytes per row. Immutable once built; any number of threads may
 * use one. It keeps no pointer into w's data beyond an identity check.
 */
typedef struct calm_screen calm_screen;

/**
 * Builds the screen of w (any storage dtype), splitting panels across the pool. NULL when w cannot be
 * screened: a non-finite weight, a row with ||w||_2 > 2^40, k > 32768, n or k <= 0, or no memory.
 */
calm_screen *calm_screen_create(calm_pool *pool, const calm_matrix *w);
void calm_screen_destroy(calm_screen *screen);
/** Bytes the screen holds (NULL: 0). */
size_t calm_screen_bytes(const calm_screen *screen);

/** What a screened argmax did. Survivors are the (row, vocabulary entry) pairs recomputed exactly. */
typedef struct {
    int64_t rows;          /* rows asked */
    int64_t screened_rows; /* rows decided by the screen and an exact recomputation of their survivors */
    int64_t zero_rows;     /* all-zero rows (every product is +0: index 0, max +0) */
    int64_t direct_rows;   /* rows left to calm_linear_argmax: non-finite or extreme (outside 2^-40..2^40) inputs,
                              or survivors on more than half of the 32-column panels) */
    int64_t survivors;     /* vocabulary entries recomputed exactly, summed over the screened rows */
    int64_t exact_panels;  /* distinct 32-column panels the exact pass read (each once, for all rows needing it) */
    int64_t max_survivors; /* most survivors of one screened row */
} calm_screen_stats;

/**
 * calm_linear_argmax through a screen built from w: the same out_index and bit-identical out_max for every
 * input. The vocabulary is first scored in integer arithmetic (activations quantised per row and call:
 * 7-bit unsigned with a zero point for the AVX2 vpmaddubsw kernel and the portable one, 8-bit signed for
 * AVX-512 VNNI), with a rigorous bound on |exact - screened| per (row, entry): Cauchy-Schwarz on both
 * quantisation residuals, the exact FMA chain's own rounding (gamma_k * ||x|| * ||w||) and the rounding of
 * the bound's evaluation. The entries whose upper bound reaches the row's best lower bound (every entry
 * attaining the exact maximum among them) are recomputed with the active ISA's GEMM tile (the same FMA
 * chain as calm_linear_argmax), and the first maximum among them wins. Rows the screen cannot decide go to
 * calm_linear_argmax. screen NULL, or built from another matrix: calm_linear_argmax. stats may be NULL.
 */
void calm_linear_argmax_screened(calm_pool *pool, const float *x, int32_t m, size_t ldx, const calm_matrix *w,
                                 const calm_screen *screen, int32_t *out_index, float *out_max,
                                 calm_screen_stats *stats);

/** Process-wide totals of every calm_linear_argmax_screened call's stats (max_survivors: the largest);
 *  reset != 0 zeroes them after reading. out may be NULL. */
void calm_screen_stats_total(calm_screen_stats *out, int reset);

/**
 * For tests: the screen's bounds against the exact value e of every (row, entry) of x * W^T (one direct
 * multiply per row: slow), with the calling thread's screening kernel. out_slack[i] = the largest
 * |e - (U + L) / 2| / ((U - L) / 2) over the row's entries (<= 1 where the bounds hold; how close to 1
 * says how tight they are; NaN for rows the screen leaves to the direct kernel). Returns how many
 * (row, entry) pairs have e outside [L, U] (0 unless the bound is wrong), -1 for a screen of another matrix.
 */
int64_t calm_screen_check_bounds(const float *x, int32_t m, size_t ldx, const calm_matrix *w, const calm_screen *screen,
                                 float *out_slack);

/** The screening kernel the calling thread would use now: "avx512-vnni", "avx2" or "portable". */
const char *calm_screen_kernel_name(void);

/* ---------------------------------------------------------------- row-wise ops (rows contiguous, stride n) */

/** y = x / sqrt(mean(x^2) + eps) * w, per row (Llama RMSNorm). y may alias x. */
void calm_rmsnorm(const float *x, const float *w, float *y, int32_t rows, int32_t n, float eps);
/** y = (x - mean) / sqrt(var + eps) * w + b, biased variance, per row. y may alias x. */
void calm_layernorm(const float *x, const float *w, const float *b, float *y, int32_t rows, int32_t n, float eps);
/** y = x / (1 + exp(-x)) (relative error < 1e-6; silu(-inf) is NaN as in that formula). y may alias x. */
void calm_silu(const float *x, float *y, size_t n);
/** y = silu(gate) * up. y may alias gate or up. */
void calm_swiglu(const float *gate, const float *up, float *y, size_t n);
/**
 * GPT-2's gelu_new (the tanh approximation), y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))),
 * computed as the identical x * sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3)), which needs one exp and
 * no cancellation (relative error < 2e-6). y may alias x.
 */
void calm_gelu_tanh(const float *x, float *y, size_t n);
/** y = a + b. y may alias a or b. */
void calm_add(const float *a, const float *b, float *y, size_t n);
/** In-place softmax over n values (max-subtracted). */
void calm_softmax(float *x, int32_t n);
/** Index of the first maximum of x[0..n) (first NaN if any, as torch.argmax); 0 when n <= 0. */
int32_t calm_argmax(const float *x, int32_t n);
/** Flags of calm_float_classes. */
#define CALM_HAS_NAN 1
#define CALM_HAS_FINITE 2
/** CALM_HAS_NAN if x[0..n) holds a NaN, | CALM_HAS_FINITE if it holds a finite value (one vectorised
 *  pass: the samplers' check of a vocabulary row). */
int32_t calm_float_classes(const float *x, size_t n);
/** Argmax of each of `rows` rows of n floats. */
void calm_argmax_rows(const float *x, int32_t rows, int32_t n, int32_t *out);
/** sum a[i] * b[i]. */
float calm_dot(const float *a, const float *b, int32_t n);
/** y += alpha * x. */
void calm_axpy(float alpha, const float *x, float *y, int32_t n);
/** y += t * (target - y), element-wise as one FMA (y = fma(t, target - y, y)): a convex blend for t in
 *  [0, 1] (Token Maturation's contraction update and EMAs), an extrapolation for t > 1 (guidance:
 *  y = u + s * (c - u)). Portable only: one rounding sequence on every ISA. */
void calm_lerp(const float *target, float t, float *y, size_t n);
/** y *= a, element-wise. */
void calm_scale(float a, float *y, size_t n);
/** x[r][i] = fma(scale[i], x[r][i], shift[i]) for `rows` rows of n (FiLM with scale = 1 + gamma). */
void calm_scale_shift_rows(float *x, int32_t rows, int32_t n, const float *scale, const float *shift);
/**
 * Indices of the k largest of x[0..n) (k is clamped to n), largest first; equal values keep the lower
 * index first. x must be finite. out has room for min(k, n) indices; returns how many were written.
 * O(n log k): a bounded heap, for top-k statistics over a vocabulary row.
 */
int32_t calm_top_k(const float *x, int32_t n, int32_t k, int32_t *out);

/**
 * Half-split rotary embedding in place for n_heads heads of head_dim (even) at one position:
 * x' = x * cos + rotate_half(x) * sin, rotate_half(x) = concat(-x[d/2:], x[:d/2]).
 * cos and sin have head_dim entries (the reference's concat(freqs, freqs) tables).
 */
void calm_rope_half(float *x, int32_t n_heads, int32_t head_dim, const float *cos, const float *sin);

/**
 * Attention of one query head over n_keys cached positions (all visible; the caller applies the
 * causal limit by passing n_keys). Position t lives in block t / block_len at row t % block_len;
 * a row's key (value) starts at k_blocks[b] + row * pos_stride (v_blocks likewise) and has
 * head_dim floats. scores is scratch of n_keys floats. out = softmax(q.K^T * scale) . V.
 */
void calm_attention_head(const float *q, int32_t head_dim, float scale,
                         const float *const *k_blocks, const float *const *v_blocks,
                         int32_t block_len, size_t pos_stride, int32_t n_keys,
                         float *scores, float *out);

/**
 * Causal attention of `rows` consecutive query rows of one head (prefill, evaluation blocks): query
 * row r (stride q_stride) sees keys [0, first_keys + r). Keys/values are paged as for
 * calm_attention_head. Each row's result is bit-identical to calm_attention_head on that row; keys
 * and values are read once per tile of rows. scores: scratch of min(rows, 8) * (first_keys + rows - 1)
 * floats. out rows have stride out_stride.
 */
void calm_attention_rows(const float *q, size_t q_stride, int32_t rows, int32_t head_dim, float scale,
                         const float *const *k_blocks, const float *const *v_blocks, int32_t block_len,
                         size_t pos_stride, int32_t first_keys, float *scores, float *out, size_t out_stride);

/**
 * calm_attention_rows for every head of the rows at once (decode and short prompts: the rows' whole
 * cached rows are read once, in order, instead of a head's slice per pass). Query head h is at
 * q + h * head_dim in a row and reads KV head h / (n_heads / n_kv_heads), at that head's offset in
 * each cached row; k_blocks / v_blocks (n_blocks each) point at head 0 of their block. out rows
 * (stride out_stride) receive n_heads * head_dim floats. scores: scratch of
 * min(rows, 8) * n_heads * (first_keys + rows - 1) floats. Each head's result is bit-identical to
 * calm_attention_rows (and so calm_attention_head) on that head.
 */
void calm_attention_rows_heads(const float *q, size_t q_stride, int32_t rows, int32_t n_heads, int32_t n_kv_heads,
                               int32_t head_dim, float scale, const float *const *k_blocks,
                               const float *const *v_blocks, int32_t n_blocks, int32_t block_len, size_t pos_stride,
                               int32_t first_keys, float *scores, float *out, size_t out_stride);

/* ---------------------------------------------------------------- benchmark helpers */

/**
 * Measured FMA throughput: every pool thread runs a register-only loop of independent vector FMAs
 * (widest active ISA) for about `seconds`. Returns total GFLOP/s (2 flops per FMA lane).
 */
double calm_bench_fma_peak(calm_pool *pool, double seconds);

/**
 * STREAM triad a[i] = b[i] + s * c[i] over three arrays of n floats (allocated inside), split
 * across the pool, repeated for about `seconds`; returns the best GB/s counting 12 bytes per i.
 */
double calm_bench_stream_triad(calm_pool *pool, size_t n, double seconds);

/* ================================================================ training
 * Plain row-major f32 GEMMs for training (weights change every step, so nothing is packed).
 * All compute C[m x n] = op(A) * op(B) (or C += ... when accumulate != 0) with FMA chains over k
 * in increasing order; AVX2+FMA when available (calm_isa_force applies), portable C otherwise;
 * split across the pool (NULL: one thread). Leading dimensions are in floats.
 */

/** C = A * B: A is m x k (lda), B is k x n (ldb). (dX = dY * W.) */
void calm_gemm_nn(calm_pool *pool, int32_t m, int32_t n, int32_t k, const float *a, size_t lda,
                  const float *b, size_t ldb, float *c, size_t ldc, int accumulate);
/** C = A^T * B: A is k x m (lda), B is k x n (ldb). (dW = dY^T * X.) */
void calm_gemm_tn(calm_pool *pool, int32_t m, int32_t n, int32_t k, const float *a, size_t lda,
                  const float *b, size_t ldb, float *c, size_t ldc, int accumulate);
/** C = A * B^T: A is m x k (lda), B is n x k (ldb). (Y = X * W^T.) */
void calm_gemm_nt(calm_pool *pool, int32_t m, int32_t n, int32_t k, const float *a, size_t lda,
                  const float *b, size_t ldb, float *c, size_t ldc, int accumulate);


/**
 * Fused softmax cross-entropy, in place: for each row r of `rows` rows of v logits (row-major),
 * row_loss[r] = logsumexp(x) - x[labels[r]] and the row is overwritten with the gradient
 * grad_scale * (softmax(x) - onehot(labels[r])). Rows are split across the pool.
 */
void calm_train_softmax_xent(calm_pool *pool, float *logits, const int32_t *labels, int32_t rows, int32_t v,
                             float grad_scale, float *row_loss);

/**
 * Causal multi-head attention over `seqs` sequences of t positions (rows (seq, position)),
 * q: rows x (heads*head_dim), k, v: rows x (kv_heads*head_dim), query head h reads KV head
 * h / (heads/kv_heads); scale 1/sqrt(head_dim). Writes out (rows x heads*head_dim) and the
 * probabilities probs[seq][head][i][j] (t x t each, zero above the diagonal).
 */
void calm_train_attention_forward(calm_pool *pool, const float *q, const float *k, const float *v, int32_t seqs,
                                  int32_t t, int32_t heads, int32_t kv_heads, int32_t head_dim, float *out,
                                  float *probs);
/**
 * calm_train_attention_forward with a lower bound on the visible keys: query row (seq, i) attends to
 * keys key_start[seq*t + i] … i of its sequence (clamped to 0 … i; NULL: every key ≤ i). The masked
 * probabilities are stored as 0, so calm_train_attention_backward applies unchanged. Token Maturation
 * trains its "tail-only" guidance mask with it (tail rows cannot see the committed prefix).
 */
void calm_train_attention_forward_masked(calm_pool *pool, const float *q, const float *k, const float *v, int32_t seqs,
                                         int32_t t, int32_t heads, int32_t kv_heads, int32_t head_dim,
                                         const int32_t *key_start, float *out, float *probs);
/** Backward of calm_train_attention_forward(_masked): dq, dk, dv are overwritten (not accumulated). */
void calm_train_attention_backward(calm_pool *pool, const float *q, const float *k, const float *v,
                                   const float *probs, const float *dout, int32_t seqs, int32_t t, int32_t heads,
                                   int32_t kv_heads, int32_t head_dim, float *dq, float *dk, float *dv);

/** dgate, dup of y = silu(gate) * up given dy (n elements). */
void calm_train_swiglu_backward(const float *gate, const float *up, const float *dy, float *dgate, float *dup, size_t n);
/** dx of y = gelu_new(x) (calm_gelu_tanh) given dy. dx may alias dy. */
void calm_train_gelu_tanh_backward(const float *x, const float *dy, float *dx, size_t n);
/** dx of y = silu(x) given dy. dx may alias dy. */
void calm_train_silu_backward(const float *x, const float *dy, float *dx, size_t n);
/** RMSNorm forward keeping rstd (one per row). */
void calm_train_rmsnorm_forward(const float *x, const float *w, float *y, float *rstd, int32_t rows, int32_t n, float eps);
/** RMSNorm backward: dx overwritten, dw (may be NULL) accumulated. */
void calm_train_rmsnorm_backward(const float *x, const float *w, const float *rstd, const float *dy, float *dx,
                                 float *dw, int32_t rows, int32_t n);

/**
 * One AdamW update over n values: g *= grad_scale (kept), m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2,
 * w = w * decay - lr * (m / bias1) / (sqrt(v / bias2) + eps). Split across the pool.
 */
void calm_train_adamw(calm_pool *pool, float *w, float *g, float *m, float *v, size_t n, float lr, float beta1,
                      float beta2, float bias1, float bias2, float eps, float decay, float grad_scale);

#ifdef __cplusplus
}
#endif

#endif /* CALM_KERNELS_H */
