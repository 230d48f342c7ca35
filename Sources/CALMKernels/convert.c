/* f32 <-> f16 / bf16 conversions (round to nearest even, NaN preserved, f16 subnormals exact). */
#include "internal.h"
#include <string.h>
#if CALM_X86
#include <immintrin.h>
#endif

static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float calm__f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F;
    uint32_t mant = h & 0x3FF;
    if (exp == 0x1F) return u2f(sign | 0x7F800000u | (mant << 13)); /* inf / NaN (payload kept) */
    if (exp == 0) {
        if (mant == 0) return u2f(sign);
        /* subnormal: mant * 2^-24, exact in f32 */
        float v = (float)mant * 0x1p-24f;
        return u2f(sign | f2u(v));
    }
    return u2f(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t calm__f32_to_f16(float f) {
    uint32_t u = f2u(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) { /* NaN: keep the top payload bits, force quiet so it stays NaN */
        return (uint16_t)(sign | 0x7E00 | ((a >> 13) & 0x3FF));
    }
    if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00); /* rounds to >= 65520: inf */
    if (a < 0x38800000u) {
        /* result is subnormal or zero: value = a * 2^24 in units of 2^-24, round to nearest even */
        if (a < 0x33000000u) return sign; /* < 2^-25: rounds to zero (2^-25 exactly ties to 0) */
        uint32_t e = a >> 23;             /* 102..112 */
        uint32_t m = (a & 0x7FFFFF) | 0x800000;
        uint32_t shift = 126 - e;         /* value in 2^-24 units = m >> (shift) with shift 14..24 */
        uint32_t r = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    /* normal: rebias 127 -> 15 and round the 13 dropped bits to nearest even */
    uint32_t r = a - 0x38000000u; /* (e - 112) << 23 | mant */
    r += 0x0FFF + ((r >> 13) & 1);
    return (uint16_t)(sign | (r >> 13));
}

uint16_t calm__f32_to_bf16(float f) {
    uint32_t u = f2u(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x0040); /* quiet NaN */
    u += 0x7FFF + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

#if CALM_X86
/* AVX2 + F16C paths (also used at the AVX-512 level: conversions are memory-bound) */
CALM_TARGET_AVX2 static void f16_to_f32_avx2(const uint16_t *s, float *d, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
    for (; i < n; i++) d[i] = calm__f16_to_f32(s[i]);
}
CALM_TARGET_AVX2 static void bf16_to_f32_avx2(const uint16_t *s, float *d, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + i)));
        _mm256_storeu_si256((__m256i *)(d + i), _mm256_slli_epi32(v, 16));
    }
    for (; i < n; i++) d[i] = calm__bf16_to_f32(s[i]);
}
/* vcvtps2ph rounds to nearest even, handles subnormals and overflow; NaN stays NaN */
CALM_TARGET_AVX2 static void f32_to_f16_avx2(const float *s, uint16_t *d, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(d + i), _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) d[i] = calm__f32_to_f16(s[i]);
}
CALM_TARGET_AVX2 static void f32_to_bf16_avx2(const float *s, uint16_t *d, size_t n) {
    size_t i = 0;
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7FFF);
    const __m256i absmask = _mm256_set1_epi32(0x7FFFFFFF), inf = _mm256_set1_epi32(0x7F800000);
    const __m256i quiet = _mm256_set1_epi32(0x00400000);
    for (; i + 16 <= n; i += 16) {
        __m256i r[2];
        for (int h = 0; h < 2; h++) {
            __m256i u = _mm256_loadu_si256((const __m256i *)(s + i + 8 * h));
            __m256i isnan = _mm256_cmpgt_epi32(_mm256_and_si256(u, absmask), inf);
            __m256i rounded = _mm256_add_epi32(u, _mm256_add_epi32(bias, _mm256_and_si256(_mm256_srli_epi32(u, 16), one)));
            __m256i v = _mm256_blendv_epi8(rounded, _mm256_or_si256(u, quiet), isnan);
            r[h] = _mm256_srli_epi32(v, 16);
        }
        /* pack 2 x 8 u32 (<= 0xFFFF) to 16 u16, fixing the lane interleave */
        __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r[0], r[1]), 0xD8);
        _mm256_storeu_si256((__m256i *)(d + i), p);
    }
    for (; i < n; i++) d[i] = calm__f32_to_bf16(s[i]);
}
#endif

void calm_convert_to_f32(const void *src, calm_dtype src_dtype, float *dst, size_t n) {
    if (n == 0) return;
    if (src_dtype == CALM_F32) {
        if ((const void *)dst != src) memmove(dst, src, n * 4);
        return;
    }
    const uint16_t *s = (const uint16_t *)src;
#if CALM_X86
    if (CALM_USE_AVX2()) {
        if (src_dtype == CALM_F16) f16_to_f32_avx2(s, dst, n);
        else bf16_to_f32_avx2(s, dst, n);
        return;
    }
#endif
    if (src_dtype == CALM_F16)
        for (size_t i = 0; i < n; i++) dst[i] = calm__f16_to_f32(s[i]);
    else
        for (size_t i = 0; i < n; i++) dst[i] = calm__bf16_to_f32(s[i]);
}

void calm_convert_from_f32(const float *src, void *dst, calm_dtype dst_dtype, size_t n) {
    if (n == 0) return;
    if (dst_dtype == CALM_F32) {
        if ((const void *)src != dst) memmove(dst, src, n * 4);
        return;
    }
    uint16_t *d = (uint16_t *)dst;
#if CALM_X86
    if (CALM_USE_AVX2()) {
        if (dst_dtype == CALM_F16) f32_to_f16_avx2(src, d, n);
        else f32_to_bf16_avx2(src, d, n);
        return;
    }
#endif
    if (dst_dtype == CALM_F16)
        for (size_t i = 0; i < n; i++) d[i] = calm__f32_to_f16(src[i]);
    else
        for (size_t i = 0; i < n; i++) d[i] = calm__f32_to_bf16(src[i]);
}
