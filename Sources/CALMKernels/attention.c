/* One query head attending over a paged KV cache. */
#include "internal.h"
#include <math.h>
#include <stdlib.h>

void calm_attention_head(const float *q, int32_t head_dim, float scale, const float *const *k_blocks,
                         const float *const *v_blocks, int32_t block_len, size_t pos_stride, int32_t n_keys,
                         float *scores, float *out) {
    for (int32_t d = 0; d < head_dim; d++) out[d] = 0.0f;
    if (n_keys <= 0) return;
    for (int32_t t = 0; t < n_keys; t++) {
        const float *kr = k_blocks[t / block_len] + (size_t)(t % block_len) * pos_stride;
        scores[t] = calm_dot(q, kr, head_dim) * scale;
    }
    calm_softmax(scores, n_keys);
    for (int32_t t = 0; t < n_keys; t++) {
        const float *vr = v_blocks[t / block_len] + (size_t)(t % block_len) * pos_stride;
        calm_axpy(scores[t], vr, out, head_dim);
    }
}

/* Several consecutive causal query rows of one head: row r sees keys [0, first_keys + r). Each key
 * and value row is loaded once per tile of rows instead of once per row, while every row's
 * arithmetic (dot per key, scale, softmax, axpy in key order) is exactly calm_attention_head's, so
 * a row's output is the same whichever path or tiling computed it. */
#define CALM_ATTENTION_TILE 8

void calm_attention_rows(const float *q, size_t q_stride, int32_t rows, int32_t head_dim, float scale,
                         const float *const *k_blocks, const float *const *v_blocks, int32_t block_len,
                         size_t pos_stride, int32_t first_keys, float *scores, float *out, size_t out_stride) {
    if (rows <= 0) return;
#if CALM_X86
    if (CALM_USE_AVX2()) {
        calm__attention_rows_avx2(q, q_stride, rows, head_dim, scale, k_blocks, v_blocks, block_len, pos_stride,
                                  first_keys, scores, out, out_stride);
        return;
    }
#endif
    const int32_t max_keys = first_keys + rows - 1;
    for (int32_t r0 = 0; r0 < rows; r0 += CALM_ATTENTION_TILE) {
        const int32_t nr = rows - r0 < CALM_ATTENTION_TILE ? rows - r0 : CALM_ATTENTION_TILE;
        const int32_t tile_keys = first_keys + r0 + nr - 1;
        for (int32_t r = 0; r < nr; r++) {
            float *o = out + (size_t)(r0 + r) * out_stride;
            for (int32_t d = 0; d < head_dim; d++) o[d] = 0.0f;
        }
        if (tile_keys <= 0) continue;
        for (int32_t t = 0; t < tile_keys; t++) {
            const float *kr = k_blocks[t / block_len] + (size_t)(t % block_len) * pos_stride;
            for (int32_t r = 0; r < nr; r++) {
                if (t < first_keys + r0 + r)
                    scores[(size_t)r * max_keys + t] = calm_dot(q + (size_t)(r0 + r) * q_stride, kr, head_dim) * scale;
            }
        }
        for (int32_t r = 0; r < nr; r++) {
            const int32_t n = first_keys + r0 + r;
            if (n > 0) calm_softmax(scores + (size_t)r * max_keys, n);
        }
        for (int32_t t = 0; t < tile_keys; t++) {
            const float *vr = v_blocks[t / block_len] + (size_t)(t % block_len) * pos_stride;
            for (int32_t r = 0; r < nr; r++) {
                if (t < first_keys + r0 + r)
                    calm_axpy(scores[(size_t)r * max_keys + t], vr, out + (size_t)(r0 + r) * out_stride, head_dim);
            }
        }
    }
}

void calm_attention_rows_heads(const float *q, size_t q_stride, int32_t rows, int32_t n_heads, int32_t n_kv_heads,
                               int32_t head_dim, float scale, const float *const *k_blocks,
                               const float *const *v_blocks, int32_t n_blocks, int32_t block_len, size_t pos_stride,
                               int32_t first_keys, float *scores, float *out, size_t out_stride) {
    if (rows <= 0 || n_heads <= 0 || n_kv_heads <= 0) return;
#if CALM_X86
    if (CALM_USE_AVX2()) {
        calm__attention_rows_heads_avx2(q, q_stride, rows, n_heads, n_kv_heads, head_dim, scale, k_blocks, v_blocks,
                                        block_len, pos_stride, first_keys, scores, out, out_stride);
        return;
    }
#endif
    /* head by head through calm_attention_rows, with each block pointer moved to the head's slice */
    const int32_t group = n_heads / n_kv_heads;
    const float **kb = (const float **)malloc(sizeof(float *) * (size_t)(n_blocks > 0 ? n_blocks : 1) * 2);
    if (!kb) return;
    const float **vb = kb + (n_blocks > 0 ? n_blocks : 1);
    for (int32_t h = 0; h < n_heads; h++) {
        const size_t off = (size_t)(h / group) * (size_t)head_dim;
        for (int32_t b = 0; b < n_blocks; b++) {
            kb[b] = k_blocks[b] ? k_blocks[b] + off : NULL;
            vb[b] = v_blocks[b] ? v_blocks[b] + off : NULL;
        }
        calm_attention_rows(q + (size_t)h * head_dim, q_stride, rows, head_dim, scale, kb, vb, block_len, pos_stride,
                            first_keys, scores, out + (size_t)h * head_dim, out_stride);
    }
    free((void *)kb);
}
