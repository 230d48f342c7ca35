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

/*
 * One panel, k-outer: the 32 source rows are read as 32 forward streams and the panel is written
 * sequentially; conversions go through calm_convert_* in chunks so they use the SIMD paths.
 */
void calm_matrix_pack(calm_matrix *dst, const void *src, calm_dtype src_dtype, size_t src_row_stride) {
    const int32_t n = dst->n, k = dst->k;
    if (n <= 0 || k <= 0) return;
    const size_t panels = ((size_t)n + CALM_PANEL - 1) / CALM_PANEL;
    const size_t es = calm_dtype_size(dst->dtype), ses = calm_dtype_size(src_dtype);
    const int same = src_dtype == dst->dtype;
    enum { KB = 64 }; /* k values per chunk */
    float tmp[KB * CALM_PANEL];
    for (size_t p = 0; p < panels; p++) {
        unsigned char *panel = (unsigned char *)dst->data + p * (size_t)k * CALM_PANEL * es;
        const size_t j0 = p * CALM_PANEL;
        const int cols = (size_t)n - j0 < CALM_PANEL ? (int)((size_t)n - j0) : CALM_PANEL;
        for (int32_t k0 = 0; k0 < k; k0 += KB) {
            const int kb = k - k0 < KB ? k - k0 : KB;
            unsigned char *out = panel + (size_t)k0 * CALM_PANEL * es;
            if (same) {
                /* straight transpose of element bits */
                if (cols < CALM_PANEL) memset(out, 0, (size_t)kb * CALM_PANEL * es);
                for (int c = 0; c < cols; c++) {
                    const unsigned char *row = (const unsigned char *)src + ((j0 + (size_t)c) * src_row_stride + (size_t)k0) * ses;
                    if (es == 4)
                        for (int kk = 0; kk < kb; kk++) ((uint32_t *)out)[kk * CALM_PANEL + c] = ((const uint32_t *)row)[kk];
                    else
                        for (int kk = 0; kk < kb; kk++) ((uint16_t *)out)[kk * CALM_PANEL + c] = ((const uint16_t *)row)[kk];
                }
                continue;
            }
            /* widen each source row chunk to f32, transpose into tmp, then narrow tmp into the panel */
            float rowbuf[KB];
            for (int c = 0; c < CALM_PANEL; c++) {
                if (c < cols) {
                    const unsigned char *row = (const unsigned char *)src + ((j0 + (size_t)c) * src_row_stride + (size_t)k0) * ses;
                    calm_convert_to_f32(row, src_dtype, rowbuf, (size_t)kb);
                    for (int kk = 0; kk < kb; kk++) tmp[kk * CALM_PANEL + c] = rowbuf[kk];
                } else {
                    for (int kk = 0; kk < kb; kk++) tmp[kk * CALM_PANEL + c] = 0.0f;
                }
            }
            calm_convert_from_f32(tmp, out, dst->dtype, (size_t)kb * CALM_PANEL);
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
