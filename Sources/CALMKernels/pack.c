/* Packing of (n, k) weight matrices into 32-column panels, and reading rows back. */
#include "internal.h"
#include <string.h>

size_t calm_matrix_packed_bytes(int32_t n, int32_t k, calm_dtype dtype) {
    if (n <= 0 || k <= 0) return 0;
    size_t panels = ((size_t)n + CALM_PANEL - 1) / CALM_PANEL;
    return panels * (size_t)k * CALM_PANEL * calm_dtype_size(dtype);
}

static inline float load_as_f32(const void *src, calm_dtype dt, size_t idx) {
    switch (dt) {
    case CALM_F16: return calm__f16_to_f32(((const uint16_t *)src)[idx]);
    case CALM_BF16: return calm__bf16_to_f32(((const uint16_t *)src)[idx]);
    default: return ((const float *)src)[idx];
    }
}

void calm_matrix_pack(calm_matrix *dst, const void *src, calm_dtype src_dtype, size_t src_row_stride) {
    const int32_t n = dst->n, k = dst->k;
    if (n <= 0 || k <= 0) return;
    const size_t panels = ((size_t)n + CALM_PANEL - 1) / CALM_PANEL;
    const size_t es = calm_dtype_size(dst->dtype);
    /* bf16 -> bf16 and f16 -> f16 copy the bits; everything else goes through f32 */
    const int same16 = src_dtype == dst->dtype && src_dtype != CALM_F32;
    for (size_t p = 0; p < panels; p++) {
        unsigned char *panel = (unsigned char *)dst->data + p * (size_t)k * CALM_PANEL * es;
        for (int c = 0; c < CALM_PANEL; c++) {
            size_t j = p * CALM_PANEL + (size_t)c;
            for (int32_t kk = 0; kk < k; kk++) {
                size_t off = (size_t)kk * CALM_PANEL + (size_t)c;
                if (j >= (size_t)n) {
                    memset(panel + off * es, 0, es);
                    continue;
                }
                size_t si = j * src_row_stride + (size_t)kk;
                if (same16) {
                    ((uint16_t *)panel)[off] = ((const uint16_t *)src)[si];
                    continue;
                }
                float v = load_as_f32(src, src_dtype, si);
                switch (dst->dtype) {
                case CALM_F16: ((uint16_t *)panel)[off] = calm__f32_to_f16(v); break;
                case CALM_BF16: ((uint16_t *)panel)[off] = calm__f32_to_bf16(v); break;
                default: ((float *)panel)[off] = v; break;
                }
            }
        }
    }
}

void calm_matrix_unpack_row(const calm_matrix *w, int32_t j, float *out) {
    const int32_t k = w->k;
    if (j < 0 || j >= w->n || k <= 0) return;
    const size_t es = calm_dtype_size(w->dtype);
    const size_t p = (size_t)j / CALM_PANEL, c = (size_t)j % CALM_PANEL;
    const unsigned char *panel = (const unsigned char *)w->data + p * (size_t)k * CALM_PANEL * es;
    for (int32_t kk = 0; kk < k; kk++) out[kk] = load_as_f32(panel, w->dtype, (size_t)kk * CALM_PANEL + c);
}
