/* Row-wise ops: norms, activations, softmax, argmax, dot, axpy, rotary embedding (portable). */
#include "internal.h"
#include <math.h>

void calm_rmsnorm(const float *x, const float *w, float *y, int32_t rows, int32_t n, float eps) {
    if (CALM_USE_AVX2()) { calm__rmsnorm_avx2(x, w, y, rows, n, eps); return; }
    for (int32_t r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * n;
        float *yr = y + (size_t)r * n;
        float acc[16] = { 0 };
        int32_t i = 0;
        for (; i + 16 <= n; i += 16)
            for (int l = 0; l < 16; l++) acc[l] = fmaf(xr[i + l], xr[i + l], acc[l]);
        for (int l = 0; i < n; i++, l++) acc[l] = fmaf(xr[i], xr[i], acc[l]);
        float ss = 0;
        for (int l = 0; l < 16; l++) ss += acc[l];
        float inv = 1.0f / sqrtf(ss / (float)n + eps);
        for (i = 0; i < n; i++) {
            float v = xr[i] * inv;
            yr[i] = v * w[i];
        }
    }
}

void calm_layernorm(const float *x, const float *w, const float *b, float *y, int32_t rows, int32_t n, float eps) {
    if (CALM_USE_AVX2()) { calm__layernorm_avx2(x, w, b, y, rows, n, eps); return; }
    for (int32_t r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * n;
        float *yr = y + (size_t)r * n;
        double s = 0;
        for (int32_t i = 0; i < n; i++) s += xr[i];
        float mean = (float)(s / n);
        double v = 0;
        for (int32_t i = 0; i < n; i++) {
            double d = (double)xr[i] - (double)mean;
            v += d * d;
        }
        float inv = 1.0f / sqrtf((float)(v / n) + eps);
        for (int32_t i = 0; i < n; i++) {
            float t = (xr[i] - mean) * inv;
            t = t * w[i];
            yr[i] = b ? t + b[i] : t;
        }
    }
}

static inline float silu1(float x) { return x / (1.0f + expf(-x)); }

void calm_silu(const float *x, float *y, size_t n) {
    if (CALM_USE_AVX2()) { calm__silu_avx2(x, y, n); return; }
    for (size_t i = 0; i < n; i++) y[i] = silu1(x[i]);
}

void calm_swiglu(const float *gate, const float *up, float *y, size_t n) {
    if (CALM_USE_AVX2()) { calm__swiglu_avx2(gate, up, y, n); return; }
    for (size_t i = 0; i < n; i++) y[i] = silu1(gate[i]) * up[i];
}

/* 0.5 x (1 + tanh(u)) = x / (1 + e^(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3) */
static inline float gelu_tanh1(float x) {
    float u2 = 1.5957691216057308f * (x + 0.044715f * x * x * x);
    return x / (1.0f + expf(-u2));
}

void calm_gelu_tanh(const float *x, float *y, size_t n) {
    if (CALM_USE_AVX2()) { calm__gelu_tanh_avx2(x, y, n); return; }
    for (size_t i = 0; i < n; i++) y[i] = gelu_tanh1(x[i]);
}

void calm_add(const float *a, const float *b, float *y, size_t n) {
    if (CALM_USE_AVX2()) { calm__add_avx2(a, b, y, n); return; }
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void calm_softmax(float *x, int32_t n) {
    if (CALM_USE_AVX2()) { calm__softmax_avx2(x, n); return; }
    if (n <= 0) return;
    float mx = x[0];
    for (int32_t i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double s = 0;
    for (int32_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        s += x[i];
    }
    float inv = (float)(1.0 / s);
    for (int32_t i = 0; i < n; i++) x[i] *= inv;
}

int32_t calm_argmax(const float *x, int32_t n) {
    if (n <= 0) return 0;
    if (CALM_USE_AVX2()) return calm__argmax_avx2(x, n);
    float best = x[0];
    int32_t idx = 0;
    for (int32_t i = 1; i < n; i++)
        if (calm__argmax_better(x[i], best)) { best = x[i]; idx = i; }
    return idx;
}

int32_t calm_float_classes(const float *x, size_t n) {
    /* no early exit: the loop vectorises, and a scan that finds nothing unusual reads every value anyway */
    int nan = 0, finite = 0;
    for (size_t i = 0; i < n; i++) {
        const float v = x[i];
        nan |= v != v;
        finite |= fabsf(v) < INFINITY;
    }
    return (nan ? CALM_HAS_NAN : 0) | (finite ? CALM_HAS_FINITE : 0);
}

void calm_argmax_rows(const float *x, int32_t rows, int32_t n, int32_t *out) {
    for (int32_t r = 0; r < rows; r++) out[r] = calm_argmax(x + (size_t)r * n, n);
}

float calm_dot(const float *a, const float *b, int32_t n) {
    if (CALM_USE_AVX2()) { return calm__dot_avx2(a, b, n); }
    float acc[16] = { 0 };
    int32_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) acc[l] = fmaf(a[i + l], b[i + l], acc[l]);
    for (int l = 0; i < n; i++, l++) acc[l] = fmaf(a[i], b[i], acc[l]);
    float s = 0;
    for (int l = 0; l < 16; l++) s += acc[l];
    return s;
}

void calm_axpy(float alpha, const float *x, float *y, int32_t n) {
    if (CALM_USE_AVX2()) { calm__axpy_avx2(alpha, x, y, n); return; }
    for (int32_t i = 0; i < n; i++) y[i] = fmaf(alpha, x[i], y[i]);
}

void calm_lerp(const float *target, float t, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = fmaf(t, target[i] - y[i], y[i]);
}

void calm_scale(float a, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] *= a;
}

void calm_scale_shift_rows(float *x, int32_t rows, int32_t n, const float *scale, const float *shift) {
    for (int32_t r = 0; r < rows; r++) {
        float *xr = x + (size_t)r * n;
        for (int32_t i = 0; i < n; i++) xr[i] = fmaf(scale[i], xr[i], shift[i]);
    }
}

/* a ranks above b: larger value, or equal value and lower index */
static inline int topk_above(float va, int32_t ia, float vb, int32_t ib) {
    return va > vb || (va == vb && ia < ib);
}

int32_t calm_top_k(const float *x, int32_t n, int32_t k, int32_t *out) {
    if (k > n) k = n;
    if (k <= 0) return 0;
    /* out[0..size) is a heap whose root is the lowest-ranked kept index */
    int32_t size = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t pos;
        if (size < k) {
            pos = size++;
            while (pos > 0) {   /* sift up: parents rank below children */
                int32_t parent = (pos - 1) / 2;
                if (!topk_above(x[out[parent]], out[parent], x[i], i)) break;
                out[pos] = out[parent];
                pos = parent;
            }
            out[pos] = i;
            continue;
        }
        if (!topk_above(x[i], i, x[out[0]], out[0])) continue;
        pos = 0;   /* replace the root, sift down */
        for (;;) {
            int32_t child = 2 * pos + 1;
            if (child >= size) break;
            if (child + 1 < size && topk_above(x[out[child]], out[child], x[out[child + 1]], out[child + 1])) child++;
            if (!topk_above(x[i], i, x[out[child]], out[child])) break;
            out[pos] = out[child];
            pos = child;
        }
        out[pos] = i;
    }
    /* heap sort: repeatedly move the lowest-ranked to the end, giving highest rank first */
    for (int32_t end = size - 1; end > 0; end--) {
        int32_t low = out[0];
        int32_t moving = out[end];
        int32_t pos = 0;
        for (;;) {
            int32_t child = 2 * pos + 1;
            if (child >= end) break;
            if (child + 1 < end && topk_above(x[out[child]], out[child], x[out[child + 1]], out[child + 1])) child++;
            if (!topk_above(x[moving], moving, x[out[child]], out[child])) break;
            out[pos] = out[child];
            pos = child;
        }
        out[pos] = moving;
        out[end] = low;
    }
    return size;
}

void calm_rope_half(float *x, int32_t n_heads, int32_t head_dim, const float *cos, const float *sin) {
    const int32_t h = head_dim / 2;
    for (int32_t hd = 0; hd < n_heads; hd++) {
        float *v = x + (size_t)hd * head_dim;
        for (int32_t i = 0; i < h; i++) {
            float a = v[i], b = v[i + h];
            float ca = a * cos[i], sb = b * sin[i];
            float cb = b * cos[i + h], sa = a * sin[i + h];
            v[i] = ca - sb;
            v[i + h] = cb + sa;
        }
    }
}
