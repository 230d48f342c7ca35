/*
 * AVX-512 VNNI screening tile (calm_linear_argmax_screened on CPUs with avx512vnni, when the active ISA
 * level is avx512). vpdpbusd multiplies unsigned bytes (its register operand) by signed bytes (the
 * other, here a 32-bit embedded broadcast from memory) in groups of 4 and adds into int32 lanes with no
 * 16-bit step, so activations take 8 bits: v in [-127, 127] signed, broadcast per row, and the weights
 * are read as q + 128 (q XOR 0x80: unsigned) and corrected by -128 * sum v per row (calm__screen_row.corr).
 * Up to 12 rows x 32 columns: 24 zmm accumulators + 2 weight vectors + the 0x80 constant. Compiled
 * everywhere; used only where the CPU reports avx512vnni and the start-up self-check (screen.c)
 * reproduced the exact integer sums. The bounds use the AVX2 finish.
 */
#include "internal.h"
#if CALM_X86
#include <immintrin.h>

#define MR 12
#define PF_GROUPS 16

#define KERNEL_ATTR CALM_TARGET_AVX512_VNNI __attribute__((always_inline)) static inline

/* acc += dot4(w as u8, broadcast(*p) as s8), the broadcast folded into the instruction (load ports only) */
#define DPBUSD_BROADCAST(acc, w, p) \
    __asm__("vpdpbusd %[xm]%{1to16%}, %[wv], %[av]" : [av] "+v"(acc) : [wv] "v"(w), [xm] "m"(*(p)))

KERNEL_ATTR void tile_impl(const int mr, int groups, const uint8_t *v, size_t ldv, const int8_t *panel, int32_t *out,
                           int pf) {
    __m512i c0[MR], c1[MR];
    CALM_UNROLL for (int r = 0; r < mr; r++) {
        c0[r] = _mm512_setzero_si512();
        c1[r] = _mm512_setzero_si512();
    }
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    for (int g = 0; g < groups; g++) {
        const int8_t *wp = panel + (size_t)g * 128;
        if (pf) {
            _mm_prefetch((const char *)wp + PF_GROUPS * 128, _MM_HINT_T0);
            _mm_prefetch((const char *)wp + PF_GROUPS * 128 + 64, _MM_HINT_T0);
        }
        const __m512i w0 = _mm512_xor_si512(_mm512_loadu_si512((const void *)wp), flip);
        const __m512i w1 = _mm512_xor_si512(_mm512_loadu_si512((const void *)(wp + 64)), flip);
        CALM_UNROLL for (int r = 0; r < mr; r++) {
            const int32_t *xp = (const int32_t *)(const void *)(v + (size_t)r * ldv + (size_t)g * 4);
            DPBUSD_BROADCAST(c0[r], w0, xp);
            DPBUSD_BROADCAST(c1[r], w1, xp);
        }
    }
    CALM_UNROLL for (int r = 0; r < mr; r++) {
        _mm512_storeu_si512((void *)(out + r * 32), c0[r]);
        _mm512_storeu_si512((void *)(out + r * 32 + 16), c1[r]);
    }
}

CALM_TARGET_AVX512_VNNI static void tile_vnni(int mr, int groups, const uint8_t *v, size_t ldv, const int8_t *panel,
                                              int32_t *out, int pf) {
    switch (mr) { /* pf: a run-time flag (a predictable branch per k group) */
    case 1: tile_impl(1, groups, v, ldv, panel, out, pf); break;
    case 2: tile_impl(2, groups, v, ldv, panel, out, pf); break;
    case 3: tile_impl(3, groups, v, ldv, panel, out, pf); break;
    case 4: tile_impl(4, groups, v, ldv, panel, out, pf); break;
    case 5: tile_impl(5, groups, v, ldv, panel, out, pf); break;
    case 6: tile_impl(6, groups, v, ldv, panel, out, pf); break;
    case 7: tile_impl(7, groups, v, ldv, panel, out, pf); break;
    case 8: tile_impl(8, groups, v, ldv, panel, out, pf); break;
    case 9: tile_impl(9, groups, v, ldv, panel, out, pf); break;
    case 10: tile_impl(10, groups, v, ldv, panel, out, pf); break;
    case 11: tile_impl(11, groups, v, ldv, panel, out, pf); break;
    default: tile_impl(12, groups, v, ldv, panel, out, pf); break;
    }
}

const calm__screen_impl calm__screen_avx512_vnni = { "avx512-vnni", 1, MR, tile_vnni, calm__screen_finish_avx2 };
#endif
