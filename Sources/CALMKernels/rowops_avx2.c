/*
 * AVX2 row ops (also used at the AVX-512 level: these are memory- or latency-bound, and Zen 4
 * splits 512-bit ops anyway). exp is a Cephes-style range reduction + degree-6 polynomial,
 * relative error ~2e-7 over the whole range, with correct overflow / underflow to 0.
 */
#include "internal.h"
#if CALM_X86
#include <immintrin.h>
#include <math.h>

#define ATTR CALM_TARGET_AVX2
#define INL CALM_TARGET_AVX2 __attribute__((always_inline)) static inline

INL float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#include "exp_avx2.h"
#define exp8 calm__exp8_avx2

INL __m256 silu8(__m256 x) {
    __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

/* the tail (n % 8 elements) through the same vector code via a zero-padded buffer */
#define TAIL_LOAD(p, n) ({ float _t[8] = {0}; for (size_t _i = 0; _i < (n); _i++) _t[_i] = (p)[_i]; _mm256_loadu_ps(_t); })
#define TAIL_STORE(p, n, v) do { float _t[8]; _mm256_storeu_ps(_t, v); for (size_t _i = 0; _i < (n); _i++) (p)[_i] = _t[_i]; } while (0)

ATTR void calm__silu_avx2(const float *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, silu8(_mm256_loadu_ps(x + i)));
    if (i < n) TAIL_STORE(y + i, n - i, silu8(TAIL_LOAD(x + i, n - i)));
}

ATTR void calm__swiglu_avx2(const float *gate, const float *up, float *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(silu8(_mm256_loadu_ps(gate + i)), _mm256_loadu_ps(up + i)));
    if (i < n) TAIL_STORE(y + i, n - i, _mm256_mul_ps(silu8(TAIL_LOAD(gate + i, n - i)), TAIL_LOAD(up + i, n - i)));
}

/* gelu_new as x * sigmoid(2u): 2u = 2 sqrt(2/pi) (x + 0.044715 x^3) */
INL __m256 gelu_tanh8(__m256 x) {
    __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    __m256 u2 = _mm256_mul_ps(_mm256_set1_ps(1.5957691216057308f), _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), x3, x));
    __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), u2));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

ATTR void calm__gelu_tanh_avx2(const float *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, gelu_tanh8(_mm256_loadu_ps(x + i)));
    if (i < n) TAIL_STORE(y + i, n - i, gelu_tanh8(TAIL_LOAD(x + i, n - i)));
}

ATTR void calm__add_avx2(const float *a, const float *b, float *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    for (; i < n; i++) y[i] = a[i] + b[i];
}

INL float dot_inl(const float *a, const float *b, int32_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int32_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    if (i < n) s1 = _mm256_fmadd_ps(TAIL_LOAD(a + i, (size_t)(n - i)), TAIL_LOAD(b + i, (size_t)(n - i)), s1);
    return hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

ATTR float calm__dot_avx2(const float *a, const float *b, int32_t n) { return dot_inl(a, b, n); }

INL void axpy_inl(float alpha, const float *x, float *y, int32_t n) {
    const __m256 a = _mm256_set1_ps(alpha);
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] = fmaf(alpha, x[i], y[i]);
}

ATTR void calm__axpy_avx2(float alpha, const float *x, float *y, int32_t n) { axpy_inl(alpha, x, y, n); }

/*
 * calm_attention_rows (see attention.c) with the dot products and axpys inlined, every cached key
 * and value row of the tile prefetched before use, and for heads of 32, 64 or 128 floats each row's
 * output kept in registers over all its keys. Every output element is still the same chain as
 * calm_attention_head's: score = dot (the calm__dot_avx2 code) * scale, calm__softmax_avx2, then
 * out = fma(p_t, v_t, out) in key order from 0. At decode (one row per sequence) the time went to
 * waiting for the cache rows one at a time: a batch's KV cache is read once per layer and is
 * rarely still in the caches.
 */
#define ATT_TILE 8

/* out (nv vectors) = sum over t < n of p[t] * v_t, as fma(p[t], v_t, out) in key order from 0 */
INL void att_values(const int nv, const float *p, int32_t n, const float *const *v_blocks, int32_t block_len,
                    size_t pos_stride, float *o) {
    __m256 acc[16];
    CALM_UNROLL for (int j = 0; j < nv; j++) acc[j] = _mm256_setzero_ps();
    for (int32_t t = 0; t < n; t++) {
        const float *vr = v_blocks[t / block_len] + (size_t)(t % block_len) * pos_stride;
        const __m256 a = _mm256_set1_ps(p[t]);
        CALM_UNROLL for (int j = 0; j < nv; j++) acc[j] = _mm256_fmadd_ps(a, _mm256_loadu_ps(vr + 8 * j), acc[j]);
    }
    CALM_UNROLL for (int j = 0; j < nv; j++) _mm256_storeu_ps(o + 8 * j, acc[j]);
}

/* the lines of one cached row (head_dim floats, any alignment) towards L1 */
INL void prefetch_row(const float *r, int32_t head_dim) {
    const char *c = (const char *)r, *end = (const char *)(r + head_dim);
    for (; c < end; c += 64) _mm_prefetch(c, _MM_HINT_T0);
    _mm_prefetch(end - 1, _MM_HINT_T0);
}

ATTR void calm__attention_rows_avx2(const float *q, size_t q_stride, int32_t rows, int32_t head_dim, float scale,
                                    const float *const *k_blocks, const float *const *v_blocks, int32_t block_len,
                                    size_t pos_stride, int32_t first_keys, float *scores, float *out,
                                    size_t out_stride) {
    const int32_t max_keys = first_keys + rows - 1;
    for (int32_t r0 = 0; r0 < rows; r0 += ATT_TILE) {
        const int32_t nr = rows - r0 < ATT_TILE ? rows - r0 : ATT_TILE;
        const int32_t tile_keys = first_keys + r0 + nr - 1;
        if (tile_keys <= 0) {
            for (int32_t r = 0; r < nr; r++)
                for (int32_t d = 0; d < head_dim; d++) out[(size_t)(r0 + r) * out_stride + d] = 0.0f;
            continue;
        }
        /* a head's rows are scattered (one per position, pos_stride apart) and usually not in cache
           (the whole KV cache of a batch is read once per layer): request them all up front */
        for (int32_t t = 0; t < tile_keys; t++) prefetch_row(k_blocks[t / block_len] + (size_t)(t % block_len) * pos_stride, head_dim);
        for (int32_t t = 0; t < tile_keys; t++) {
            const float *kr = k_blocks[t / block_len] + (size_t)(t % block_len) * pos_stride;
            prefetch_row(v_blocks[t / block_len] + (size_t)(t % block_len) * pos_stride, head_dim);
            for (int32_t r = 0; r < nr; r++)
                if (t < first_keys + r0 + r)
                    scores[(size_t)r * max_keys + t] = dot_inl(q + (size_t)(r0 + r) * q_stride, kr, head_dim) * scale;
        }
        for (int32_t r = 0; r < nr; r++) {
            const int32_t n = first_keys + r0 + r;
            if (n > 0) calm__softmax_avx2(scores + (size_t)r * max_keys, n);
        }
        for (int32_t r = 0; r < nr; r++) {
            float *o = out + (size_t)(r0 + r) * out_stride;
            const float *p = scores + (size_t)r * max_keys;
            const int32_t n = first_keys + r0 + r;
            if (head_dim == 64) att_values(8, p, n, v_blocks, block_len, pos_stride, o);
            else if (head_dim == 128) att_values(16, p, n, v_blocks, block_len, pos_stride, o);
            else if (head_dim == 32) att_values(4, p, n, v_blocks, block_len, pos_stride, o);
            else {
                for (int32_t d = 0; d < head_dim; d++) o[d] = 0.0f;
                for (int32_t t = 0; t < n; t++) {
                    const float *vr = v_blocks[t / block_len] + (size_t)(t % block_len) * pos_stride;
                    axpy_inl(p[t], vr, o, head_dim);
                }
            }
        }
    }
}

/*
 * calm_attention_rows_heads: every head of the tile's rows at once. Each cached position's keys
 * (values) for all heads are one contiguous row, read whole and in order, instead of a 256-byte
 * piece of it per head and pass; each head's arithmetic is calm__attention_rows_avx2's (the same
 * dot, scale, softmax and fma(p_t, v_t, out) chain in key order), so the results are identical.
 * scores[(r * n_heads + h) * max_keys + t]; out accumulates in memory (one row, all heads).
 */
ATTR void calm__attention_rows_heads_avx2(const float *q, size_t q_stride, int32_t rows, int32_t n_heads,
                                          int32_t n_kv_heads, int32_t head_dim, float scale,
                                          const float *const *k_blocks, const float *const *v_blocks,
                                          int32_t block_len, size_t pos_stride, int32_t first_keys, float *scores,
                                          float *out, size_t out_stride) {
    const int32_t group = n_heads / n_kv_heads;
    const int32_t max_keys = first_keys + rows - 1;
    const int32_t width = n_kv_heads * head_dim; /* floats of one cached row, all heads */
    const int vec = head_dim % 8 == 0;
    for (int32_t r0 = 0; r0 < rows; r0 += ATT_TILE) {
        const int32_t nr = rows - r0 < ATT_TILE ? rows - r0 : ATT_TILE;
        const int32_t tile_keys = first_keys + r0 + nr - 1;
        for (int32_t r = 0; r < nr; r++)
            for (int32_t d = 0; d < n_heads * head_dim; d++) out[(size_t)(r0 + r) * out_stride + d] = 0.0f;
        if (tile_keys <= 0) continue;
        for (int32_t t = 0; t < tile_keys; t++) {
            const float *kr = k_blocks[t / block_len] + (size_t)(t % block_len) * pos_stride;
            if (t + 2 < tile_keys) prefetch_row(k_blocks[(t + 2) / block_len] + (size_t)((t + 2) % block_len) * pos_stride, width);
            for (int32_t r = 0; r < nr; r++) {
                if (t >= first_keys + r0 + r) continue;
                const float *qr = q + (size_t)(r0 + r) * q_stride;
                float *sr = scores + (size_t)r * n_heads * max_keys + t;
                for (int32_t h = 0; h < n_heads; h++)
                    sr[(size_t)h * max_keys] = dot_inl(qr + (size_t)h * head_dim, kr + (size_t)(h / group) * head_dim, head_dim) * scale;
            }
        }
        for (int32_t r = 0; r < nr; r++) {
            const int32_t n = first_keys + r0 + r;
            if (n > 0)
                for (int32_t h = 0; h < n_heads; h++) calm__softmax_avx2(scores + ((size_t)r * n_heads + h) * max_keys, n);
        }
        for (int32_t t = 0; t < tile_keys; t++) {
            const float *vr = v_blocks[t / block_len] + (size_t)(t % block_len) * pos_stride;
            if (t + 2 < tile_keys) prefetch_row(v_blocks[(t + 2) / block_len] + (size_t)((t + 2) % block_len) * pos_stride, width);
            for (int32_t r = 0; r < nr; r++) {
                if (t >= first_keys + r0 + r) continue;
                float *o = out + (size_t)(r0 + r) * out_stride;
                const float *p = scores + (size_t)r * n_heads * max_keys + t;
                for (int32_t h = 0; h < n_heads; h++) {
                    const float *vh = vr + (size_t)(h / group) * head_dim;
                    float *oh = o + (size_t)h * head_dim;
                    const float a = p[(size_t)h * max_keys];
                    if (vec) {
                        const __m256 av = _mm256_set1_ps(a);
                        for (int32_t d = 0; d < head_dim; d += 8)
                            _mm256_storeu_ps(oh + d, _mm256_fmadd_ps(av, _mm256_loadu_ps(vh + d), _mm256_loadu_ps(oh + d)));
                    } else {
                        axpy_inl(a, vh, oh, head_dim);
                    }
                }
            }
        }
    }
}

INL float sum_sq(const float *x, int32_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    int32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        s0 = _mm256_fmadd_ps(a, a, s0);
        s1 = _mm256_fmadd_ps(b, b, s1);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_loadu_ps(x + i);
        s0 = _mm256_fmadd_ps(a, a, s0);
    }
    if (i < n) {
        __m256 a = TAIL_LOAD(x + i, (size_t)(n - i));
        s1 = _mm256_fmadd_ps(a, a, s1);
    }
    return hsum8(_mm256_add_ps(s0, s1));
}

ATTR void calm__rmsnorm_avx2(const float *x, const float *w, float *y, int32_t rows, int32_t n, float eps) {
    for (int32_t r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * n;
        float *yr = y + (size_t)r * n;
        float inv = 1.0f / sqrtf(sum_sq(xr, n) / (float)n + eps);
        const __m256 vi = _mm256_set1_ps(inv);
        int32_t i = 0;
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(yr + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + i), vi), _mm256_loadu_ps(w + i)));
        for (; i < n; i++) {
            float v = xr[i] * inv;
            yr[i] = v * w[i];
        }
    }
}

ATTR void calm__layernorm_avx2(const float *x, const float *w, const float *b, float *y, int32_t rows, int32_t n,
                               float eps) {
    for (int32_t r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * n;
        float *yr = y + (size_t)r * n;
        __m256 s0 = _mm256_setzero_ps(), s1 = s0;
        int32_t i = 0;
        for (; i + 16 <= n; i += 16) {
            s0 = _mm256_add_ps(s0, _mm256_loadu_ps(xr + i));
            s1 = _mm256_add_ps(s1, _mm256_loadu_ps(xr + i + 8));
        }
        float tail = 0;
        for (; i < n; i++) tail += xr[i];
        const float mean = (hsum8(_mm256_add_ps(s0, s1)) + tail) / (float)n;
        const __m256 vm = _mm256_set1_ps(mean);
        s0 = _mm256_setzero_ps();
        s1 = s0;
        for (i = 0; i + 16 <= n; i += 16) {
            __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(xr + i), vm), d1 = _mm256_sub_ps(_mm256_loadu_ps(xr + i + 8), vm);
            s0 = _mm256_fmadd_ps(d0, d0, s0);
            s1 = _mm256_fmadd_ps(d1, d1, s1);
        }
        tail = 0;
        for (; i < n; i++) tail = fmaf(xr[i] - mean, xr[i] - mean, tail);
        const float var = (hsum8(_mm256_add_ps(s0, s1)) + tail) / (float)n;
        const float inv = 1.0f / sqrtf(var + eps);
        const __m256 vi = _mm256_set1_ps(inv);
        for (i = 0; i + 8 <= n; i += 8) {
            __m256 t = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + i), vm), vi), _mm256_loadu_ps(w + i));
            if (b) t = _mm256_add_ps(t, _mm256_loadu_ps(b + i));
            _mm256_storeu_ps(yr + i, t);
        }
        for (; i < n; i++) {
            float t = (xr[i] - mean) * inv;
            t = t * w[i];
            yr[i] = b ? t + b[i] : t;
        }
    }
}

ATTR void calm__softmax_avx2(float *x, int32_t n) {
    if (n <= 0) return;
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float mx = _mm_cvtss_f32(m4);
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    const __m256 vm = _mm256_set1_ps(mx);
    __m256 s = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        s = _mm256_add_ps(s, e);
    }
    if (i < n) {
        size_t t = (size_t)(n - i);
        __m256 e = exp8(_mm256_sub_ps(TAIL_LOAD(x + i, t), vm));
        /* zero the padding lanes before summing */
        float tmp[8];
        _mm256_storeu_ps(tmp, e);
        for (size_t j = t; j < 8; j++) tmp[j] = 0;
        e = _mm256_loadu_ps(tmp);
        TAIL_STORE(x + i, t, e);
        s = _mm256_add_ps(s, e);
    }
    const __m256 inv = _mm256_set1_ps(1.0f / hsum8(s));
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    const float finv = 1.0f / hsum8(s);
    for (; i < n; i++) x[i] *= finv;
}

ATTR int32_t calm__argmax_avx2(const float *x, int32_t n) {
    if (n < 16) {
        float best = x[0];
        int32_t idx = 0;
        for (int32_t i = 1; i < n; i++)
            if (calm__argmax_better(x[i], best)) { best = x[i]; idx = i; }
        return idx;
    }
    __m256 vmax = _mm256_set1_ps(-INFINITY), nan = _mm256_setzero_ps();
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        vmax = _mm256_max_ps(vmax, v);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    }
    int has_nan = _mm256_movemask_ps(nan) != 0;
    float t[8];
    _mm256_storeu_ps(t, vmax);
    float mx = t[0];
    for (int j = 1; j < 8; j++) mx = t[j] > mx ? t[j] : mx;
    for (int32_t j = i; j < n; j++) {
        if (x[j] != x[j]) has_nan = 1;
        else if (x[j] > mx) mx = x[j];
    }
    if (has_nan) {
        for (int32_t j = 0; j < n; j++)
            if (x[j] != x[j]) return j;
    }
    const __m256 vm = _mm256_set1_ps(mx);
    for (i = 0; i + 8 <= n; i += 8) {
        int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), vm, _CMP_EQ_OQ));
        if (mask) return i + __builtin_ctz((unsigned)mask);
    }
    for (; i < n; i++)
        if (x[i] == mx) return i;
    return 0;
}
#endif
