/* One query head attending over a paged KV cache. */
#include "internal.h"
#include <math.h>

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
