/*
 * Screened exact argmax: calm_linear_argmax_screened (see the header for the contract).
 *
 * The bound. For a row x (f32) and a stored weight row w (f32, or bf16/f16 widened: exactly what the FMA
 * chain multiplies), let e = the f32 FMA chain of calm_linear_argmax and d = sum_k x_k w_k (real).
 *  1. The chain: s_t = fl(x_t w_t + s_{t-1}) = (x_t w_t + s_{t-1})(1 + delta_t) + eta_t with |delta_t| <= u = 2^-24
 *     and |eta_t| <= 2^-150 (underflow), so |e - d| <= gamma_k sum|x_k w_k| + k 2^-150 (1 + gamma_k)
 *     <= gamma_k ||x|| ||w|| + k 2^-149, gamma_k = k u / (1 - k u) (Cauchy-Schwarz on sum|x_k w_k|).
 *  2. The screen: x~ = s (v + z) (v the stored activation integers, per row step s and zero point z),
 *     w~ = sigma q (q the 7-bit weights, per weight row step sigma), r_x = x - x~, r_w = w - w~. Then
 *     d = sum x~ w~ + sum x~ r_w + sum r_x w, so |d - sum x~ w~| <= ||x~|| ||r_w|| + ||r_x|| ||w||, and
 *     sum x~ w~ = s sigma T exactly, T = sum (v + z) q = raw + z colsum + corr (an exact int32: |v + z| <= 254,
 *     |q| <= 64 and k <= 32768 keep every partial sum below 2^31).
 *  3. The evaluation in f32: q^ = fl(fl(T) fl(s sigma)) (relative error <= 3.01 u), B^ = A rho + (Bc omega + E)
 *     (3 roundings at most, or fewer with FMA contraction), U = fl(q^ + B^), L = fl(q^ - B^). Every nonzero
 *     figure is kept in [2^-50, 2^42] (steps in [2^-47, 2^35]): every product and sum stays a normal float,
 *     so each rounding is relative (additions never lose to underflow), and
 *        A  >= ||x~|| (1 + 16u),   Bc >= (||r_x|| + gamma_k ||x|| + 16u ||x~||)(1 + 16u),   E = 2^-100
 *     (rho >= ||r_w||, omega >= ||w||: rounded up from double sums, or from f32 sums with their rounding and
 *     underflow bounded, see build_task) leave 16u ||x~|| (||w|| + ||r_w||) of slack, which covers q^'s
 *     rounding (|q| <= ||x~|| ||w~||), B^'s and the final addition's (<= u |q^ +- B^|): U >= e >= L for every
 *     (row, entry), as floats. A kernel may bound a whole panel first with its largest rho and omega: rounding
 *     is monotone, so that B_max >= every column's B, as floats (calm__screen_finish_fn).
 * Entries with U < L* (the row's best L) are strictly below the exact maximum (e_j <= U_j < L* <= e_max), so
 * the survivors U >= L* hold every entry attaining it; the exact FMA chains of the survivors, compared in
 * increasing index with the argmax rule, give calm_linear_argmax's index and maximum.
 * Inputs outside that analysis go to calm_linear_argmax: non-finite x, ||x|| > 2^40, max|x| < 2^-40 (all-zero
 * rows excepted: every product is +0), and matrices with a non-finite weight or ||w|| > 2^40 get no screen.
 */
#define _GNU_SOURCE
#include "internal.h"
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#define SCREEN_MAX_K 32768
#define SCREEN_MAX_NORM 0x1p40
#define SCREEN_MIN_ABS 0x1p-40
#define SCREEN_FLOOR 0x1p-50f /* nonzero norms are raised to this at least (rounding up is always safe) */
#define U_F32 0x1p-24
#define INFLATE (1.0 + 1e-9) /* covers double rounding in norms of up to 32768 terms (< 1e-11) */
#define SLOT_INIT 16          /* candidates a row holds per task before its list grows */

#ifdef CALM_SCREEN_TIMING /* phase times for out-of-tree measurement builds only */
#include <stdio.h>
#include <time.h>
static double phase_now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec; }
#define PHASE(name) do { double t_ = phase_now(); fprintf(stderr, "  %-8s %8.2f ms\n", name, (t_ - phase_t0) * 1e3); phase_t0 = t_; } while (0)
#define PHASE_START() double phase_t0 = phase_now()
#else
#define PHASE(name) ((void)0)
#define PHASE_START() ((void)0)
#endif

struct calm_screen {
    int32_t n, k, groups, n_panels;
    const void *wdata;
    calm_dtype dtype;
    int8_t *q;           /* n_panels x groups x 32 columns x 4 bytes */
    float *sigma, *rho, *omega;
    int32_t *colsum;     /* n_panels * 32 each (zero past n) */
    float *rho_max, *omega_max; /* per panel */
    void *block;
    size_t bytes, mapped;
};

/* ---------------------------------------------------------------- small helpers */

/* Smallest float >= v (v >= 0 finite), raised to SCREEN_FLOOR when nonzero. */
static float bound_up(double v) {
    if (!(v > 0)) return 0.0f;
    float f = (float)v;
    if ((double)f < v) f = nextafterf(f, INFINITY);
    return f < SCREEN_FLOOR ? SCREEN_FLOOR : f;
}

static void range(int t, int n_tasks, int32_t total, int32_t *lo, int32_t *hi) {
    *lo = (int32_t)(((int64_t)total * t) / n_tasks);
    *hi = (int32_t)(((int64_t)total * (t + 1)) / n_tasks);
}

static void *big_alloc(size_t bytes, size_t *mapped) {
    *mapped = 0;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const size_t huge = (size_t)2 << 20;
    if (bytes >= huge) {
        const size_t len = (bytes + 4095) & ~(size_t)4095, span = len + huge;
        void *base = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base != MAP_FAILED) {
            const uintptr_t start = ((uintptr_t)base + huge - 1) & ~(uintptr_t)(huge - 1);
            const size_t head = start - (uintptr_t)base, tail = span - head - len;
            if (head) munmap(base, head);
            if (tail) munmap((char *)start + len, tail);
            (void)madvise((void *)start, len, MADV_HUGEPAGE); /* advice only */
            *mapped = len;
            return (void *)start;
        }
    }
#endif
    return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
}

static void big_free(void *p, size_t mapped) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (mapped) { munmap(p, mapped); return; }
#endif
    (void)mapped;
    free(p);
}

/* ---------------------------------------------------------------- building the screen */

typedef struct {
    const calm_matrix *w;
    calm_screen *s;
    int n_tasks;
    _Atomic int bad;
} build_job;

/*
 * One task's panels. A panel is widened to f32 at once (k x 32, its packed order) and its 32 columns are
 * worked on side by side: every loop runs over k outside and the columns inside, so the per-column
 * sums need no reassociation to vectorise. Any rounding to the grid is valid (the residual is measured).
 */
static void build_task(void *ctx, int t, int thread_index) {
    (void)thread_index;
    build_job *J = (build_job *)ctx;
    calm_screen *s = J->s;
    const int32_t K = s->k, G = s->groups;
    const size_t es = calm_dtype_size(J->w->dtype);
    int32_t p0, p1;
    range(t, J->n_tasks, s->n_panels, &p0, &p1);
    float *buf = (float *)aligned_alloc(64, (size_t)K * CALM_PANEL * sizeof(float));
    if (!buf) { atomic_store(&J->bad, 1); return; }
    for (int32_t p = p0; p < p1 && !atomic_load_explicit(&J->bad, memory_order_relaxed); p++) {
        calm_convert_to_f32((const unsigned char *)J->w->data + (size_t)p * (size_t)K * CALM_PANEL * es, J->w->dtype, buf,
                            (size_t)K * CALM_PANEL);
        const int cols = s->n - p * CALM_PANEL < CALM_PANEL ? s->n - p * CALM_PANEL : CALM_PANEL;
        int8_t *panel = s->q + (size_t)p * (size_t)G * 128;
#if CALM_X86
        if (CALM_USE_AVX2()) {
            /* f32 sums of squares of K terms: true <= (computed + K 2^-149) / (1 - gamma_K) (relative rounding,
               and at most 2^-150 per operation in the subnormal range; the residual v - sigma q is one FMA,
               rounded once); (1 + 2 (K + 2) u) covers that, the square root and the conversions */
            float sig[CALM_PANEL], w2f[CALM_PANEL], r2f[CALM_PANEL];
            int32_t csum[CALM_PANEL];
            if (!calm__screen_build_panel_avx2(buf, K, cols, panel, sig, csum, w2f, r2f)) { atomic_store(&J->bad, 1); break; }
            const double f = 1.0 + 2.0 * ((double)K + 2.0) * U_F32, tiny = 4.0 * (double)K * 0x1p-149;
            float rm = 0, om = 0;
            int ok = 1;
            for (int c = 0; c < CALM_PANEL; c++) {
                const size_t j = (size_t)p * CALM_PANEL + (size_t)c;
                const double wn = sqrt(((double)w2f[c] + tiny) * f), rn = sqrt(((double)r2f[c] + tiny) * f);
                if (c < cols && wn > SCREEN_MAX_NORM) ok = 0;
                s->sigma[j] = sig[c];
                s->colsum[j] = csum[c];
                s->rho[j] = c < cols ? bound_up(rn * INFLATE) : 0.0f;
                s->omega[j] = c < cols ? bound_up(wn * INFLATE) : 0.0f;
                if (s->rho[j] > rm) rm = s->rho[j];
                if (s->omega[j] > om) om = s->omega[j];
            }
            if (!ok) { atomic_store(&J->bad, 1); break; }
            s->rho_max[p] = rm;
            s->omega_max[p] = om;
            continue;
        }
#endif
        float mx[CALM_PANEL], inv[CALM_PANEL], sig[CALM_PANEL], bad[CALM_PANEL];
        double w2[CALM_PANEL], r2[CALM_PANEL];
        int32_t csum[CALM_PANEL];
        for (int c = 0; c < CALM_PANEL; c++) { mx[c] = 0; bad[c] = 0; w2[c] = 0; r2[c] = 0; csum[c] = 0; }
        for (int32_t kk = 0; kk < K; kk++) {
            const float *row = buf + (size_t)kk * CALM_PANEL;
            for (int c = 0; c < CALM_PANEL; c++) {
                const float v = row[c], av = v < 0 ? -v : v;
                mx[c] = av > mx[c] ? av : mx[c];
                bad[c] += v - v; /* NaN once a value is inf or NaN */
                w2[c] += (double)v * (double)v;
            }
        }
        int ok = 1;
        for (int c = 0; c < cols; c++) {
            if (bad[c] != bad[c] || sqrt(w2[c]) > SCREEN_MAX_NORM) ok = 0;
            /* rows below 2^-40 keep q = 0: all of w is residual (keeps sigma * step products normal) */
            sig[c] = mx[c] >= SCREEN_MIN_ABS ? (float)((double)mx[c] / CALM_SCREEN_QMAX) : 0.0f;
            inv[c] = sig[c] > 0 ? 1.0f / sig[c] : 0.0f;
        }
        if (!ok) { atomic_store(&J->bad, 1); break; }
        for (int c = cols; c < CALM_PANEL; c++) { sig[c] = 0; inv[c] = 0; } /* padding columns (zeros) */
        memset(panel, 0, (size_t)G * 128);
        for (int32_t kk = 0; kk < K; kk++) {
            const float *row = buf + (size_t)kk * CALM_PANEL;
            int8_t qk[CALM_PANEL];
            for (int c = 0; c < CALM_PANEL; c++) {
                float q = row[c] * inv[c];
                q = q < -CALM_SCREEN_QMAX ? -CALM_SCREEN_QMAX : q > CALM_SCREEN_QMAX ? CALM_SCREEN_QMAX : q;
                const int32_t qi = (int32_t)(q + (q >= 0 ? 0.5f : -0.5f));
                const double r = (double)row[c] - (double)sig[c] * (double)qi; /* the product is exact in double */
                r2[c] += r * r;
                csum[c] += qi;
                qk[c] = (int8_t)qi;
            }
            int8_t *dst = panel + (size_t)(kk >> 2) * CALM_PANEL * 4 + (size_t)(kk & 3);
            for (int c = 0; c < CALM_PANEL; c++) dst[c * 4] = qk[c];
        }
        float rm = 0, om = 0;
        for (int c = 0; c < CALM_PANEL; c++) {
            const size_t j = (size_t)p * CALM_PANEL + (size_t)c;
            s->sigma[j] = sig[c];
            s->colsum[j] = csum[c];
            s->rho[j] = c < cols ? bound_up(sqrt(r2[c]) * INFLATE) : 0.0f;
            s->omega[j] = c < cols ? bound_up(sqrt(w2[c]) * INFLATE) : 0.0f;
            if (s->rho[j] > rm) rm = s->rho[j];
            if (s->omega[j] > om) om = s->omega[j];
        }
        s->rho_max[p] = rm;
        s->omega_max[p] = om;
    }
    free(buf);
}

calm_screen *calm_screen_create(calm_pool *pool, const calm_matrix *w) {
    if (!w || w->n <= 0 || w->k <= 0 || w->k > SCREEN_MAX_K || !w->data) return NULL;
    calm_screen *s = (calm_screen *)calloc(1, sizeof *s);
    if (!s) return NULL;
    s->n = w->n;
    s->k = w->k;
    s->groups = (w->k + 3) / 4;
    s->n_panels = (w->n + CALM_PANEL - 1) / CALM_PANEL;
    s->wdata = w->data;
    s->dtype = w->dtype;
    const size_t cols = (size_t)s->n_panels * CALM_PANEL;
    const size_t qbytes = (size_t)s->n_panels * (size_t)s->groups * 128;
    const size_t total = qbytes + cols * 4 * sizeof(float) + (size_t)s->n_panels * 2 * sizeof(float);
    s->block = big_alloc(total, &s->mapped);
    if (!s->block) { free(s); return NULL; }
    s->bytes = total;
    s->q = (int8_t *)s->block;
    s->sigma = (float *)((char *)s->block + qbytes);
    s->rho = s->sigma + cols;
    s->omega = s->rho + cols;
    s->colsum = (int32_t *)(s->omega + cols);
    s->rho_max = (float *)(s->colsum + cols);
    s->omega_max = s->rho_max + s->n_panels;
    build_job J;
    J.w = w;
    J.s = s;
    atomic_init(&J.bad, 0);
    const int threads = calm_pool_size(pool);
    J.n_tasks = threads > 1 && s->n_panels >= 2 * threads ? 4 * threads : 1;
    if (J.n_tasks > s->n_panels) J.n_tasks = s->n_panels;
    if (J.n_tasks == 1) build_task(&J, 0, 0);
    else calm_pool_run(pool, J.n_tasks, build_task, &J);
    if (atomic_load(&J.bad)) { calm_screen_destroy(s); return NULL; }
    return s;
}

void calm_screen_destroy(calm_screen *s) {
    if (!s) return;
    big_free(s->block, s->mapped);
    free(s);
}

size_t calm_screen_bytes(const calm_screen *s) { return s ? s->bytes : 0; }

/* ---------------------------------------------------------------- portable kernels */

static void tile_portable(int mr, int groups, const uint8_t *v, size_t ldv, const int8_t *panel, int32_t *out, int pf) {
    (void)pf;
    for (int r = 0; r < mr; r++) {
        int32_t acc[CALM_PANEL] = { 0 };
        const uint8_t *vr = v + (size_t)r * ldv;
        for (int g = 0; g < groups; g++) {
            const int8_t *wp = panel + (size_t)g * 128;
            const int32_t a0 = vr[4 * g], a1 = vr[4 * g + 1], a2 = vr[4 * g + 2], a3 = vr[4 * g + 3];
            for (int c = 0; c < CALM_PANEL; c++)
                acc[c] += a0 * wp[4 * c] + a1 * wp[4 * c + 1] + a2 * wp[4 * c + 2] + a3 * wp[4 * c + 3];
        }
        memcpy(out + (size_t)r * CALM_PANEL, acc, sizeof acc);
    }
}

static void finish_portable(int mr, const int32_t *raw, const calm__screen_row *rows, const calm__screen_cols *cols,
                            int ncols, float *lstar, float *u, uint32_t *mask, float *l_out) {
    for (int r = 0; r < mr; r++) {
        const calm__screen_row R = rows[r];
        float lmax = -INFINITY;
        float *ur = u + (size_t)r * CALM_PANEL;
        for (int c = 0; c < ncols; c++) {
            const int32_t T = raw[r * CALM_PANEL + c] + R.z * cols->colsum[c] + R.corr;
            const float cs = R.s * cols->sigma[c];
            const float q = (float)T * cs;
            const float bo = R.Bc * cols->omega[c] + CALM_SCREEN_E;
            const float b = R.A * cols->rho[c] + bo;
            const float hi = q + b, lo = q - b;
            ur[c] = hi;
            if (l_out) l_out[r * CALM_PANEL + c] = lo;
            if (lo > lmax) lmax = lo;
        }
        const float ls = lmax > lstar[r] ? lmax : lstar[r];
        lstar[r] = ls;
        uint32_t mk = 0;
        for (int c = 0; c < ncols; c++) mk |= (uint32_t)(ur[c] >= ls) << c;
        mask[r] = mk;
    }
}

const calm__screen_impl calm__screen_portable = { "portable", 0, 4, tile_portable, finish_portable };

/* ---------------------------------------------------------------- SIMD self-checks */

/* A SIMD tile must give the exact integer sums (every row count, both prefetch settings, odd and even
   group counts, and the extreme values where 16-bit sums would saturate if a range were wrong). 1 when
   it does. */
static int screen_selftest(const calm__screen_impl *impl) {
    enum { G = 37, LDV = 160, ROWS = 12 };
    static int8_t panel[G * 128];
    static uint8_t v[ROWS * LDV];
    int32_t got[ROWS * CALM_PANEL], want[ROWS * CALM_PANEL];
    uint32_t st = 987654321u;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < G * 128; i++) {
            st = st * 1664525u + 1013904223u;
            panel[i] = (int8_t)(pass ? ((i & 1) ? -CALM_SCREEN_QMAX : CALM_SCREEN_QMAX)
                                      : (int)(st >> 24) % (2 * CALM_SCREEN_QMAX + 1) - CALM_SCREEN_QMAX);
        }
        for (int i = 0; i < ROWS * LDV; i++) {
            st = st * 1664525u + 1013904223u;
            const int r = (int)(st >> 24);
            v[i] = impl->scheme == 0 ? (uint8_t)(pass ? 127 : r & 127) : (uint8_t)(int8_t)(pass ? ((i & 2) ? -127 : 127) : (r % 255) - 127);
        }
        for (int r = 0; r < ROWS; r++)
            for (int c = 0; c < CALM_PANEL; c++) {
                int32_t acc = 0;
                for (int g = 0; g < G; g++)
                    for (int b = 0; b < 4; b++) {
                        const int32_t a = impl->scheme == 0 ? (int32_t)v[r * LDV + 4 * g + b] : (int32_t)(int8_t)v[r * LDV + 4 * g + b];
                        const int32_t wv = panel[(g * CALM_PANEL + c) * 4 + b] + (impl->scheme == 0 ? 0 : 128);
                        acc += a * wv;
                    }
                want[r * CALM_PANEL + c] = acc;
            }
        for (int mr = 1; mr <= impl->mr && mr <= ROWS; mr++)
            for (int pf = 0; pf < 2; pf++) {
                memset(got, 0x5A, sizeof got);
                impl->tile(mr, G, v, LDV, panel, got, pf);
                if (memcmp(got, want, (size_t)mr * CALM_PANEL * sizeof(int32_t)) != 0) return 0;
            }
        /* an even number of groups: the first G - 1 */
        for (int r = 0; r < ROWS; r++)
            for (int c = 0; c < CALM_PANEL; c++)
                for (int b = 0; b < 4; b++) {
                    const int32_t a = impl->scheme == 0 ? (int32_t)v[r * LDV + 4 * (G - 1) + b] : (int32_t)(int8_t)v[r * LDV + 4 * (G - 1) + b];
                    want[r * CALM_PANEL + c] -= a * (panel[((G - 1) * CALM_PANEL + c) * 4 + b] + (impl->scheme == 0 ? 0 : 128));
                }
        for (int mr = 1; mr <= impl->mr && mr <= ROWS; mr++) {
            memset(got, 0x5A, sizeof got);
            impl->tile(mr, G - 1, v, LDV, panel, got, mr == 1);
            if (memcmp(got, want, (size_t)mr * CALM_PANEL * sizeof(int32_t)) != 0) return 0;
        }
    }
    return 1;
}

#if CALM_X86
static pthread_once_t g_avx2_once = PTHREAD_ONCE_INIT, g_vnni_once = PTHREAD_ONCE_INIT;
static int g_avx2_ok = 0, g_vnni_ok = 0;
static void check_avx2(void) { g_avx2_ok = screen_selftest(&calm__screen_avx2); }
static void check_vnni(void) {
    __builtin_cpu_init();
    g_vnni_ok = __builtin_cpu_supports("avx512vnni") && screen_selftest(&calm__screen_avx512_vnni);
}
#endif

static const calm__screen_impl *screen_impl(void) {
#if CALM_X86
    const calm_isa isa = calm__isa();
    if (isa >= CALM_ISA_AVX512) {
        pthread_once(&g_vnni_once, check_vnni);
        if (g_vnni_ok) return &calm__screen_avx512_vnni;
    }
    if (isa >= CALM_ISA_AVX2) {
        pthread_once(&g_avx2_once, check_avx2);
        if (g_avx2_ok) return &calm__screen_avx2;
    }
#endif
    return &calm__screen_portable;
}

const char *calm_screen_kernel_name(void) { return screen_impl()->name; }

/* ---------------------------------------------------------------- quantising the rows of a call */

enum { MODE_SCREEN = 0, MODE_ZERO = 1, MODE_DIRECT = 2 };

typedef struct {
    const float *x;
    size_t ldx;
    int32_t m, K, groups;
    size_t ldv;
    int scheme;
    double gamma;
    uint8_t *v;
    calm__screen_row *rows;
    int8_t *mode;
    int n_tasks;
} quant_job;

static void quantise_row(const quant_job *J, int32_t i) {
    const float *x = J->x + (size_t)i * J->ldx;
    const int32_t K = J->K;
    uint8_t *v = J->v + (size_t)i * J->ldv;
    /* min(x, 0), max(x, 0), finiteness (f - f is NaN for inf and NaN) and sum x^2 in double (any order
       of the sums is fine: INFLATE covers their rounding) */
    float lo4[4] = { 0, 0, 0, 0 }, hi4[4] = { 0, 0, 0, 0 }, nan4[4] = { 0, 0, 0, 0 };
    double x24[4] = { 0, 0, 0, 0 };
#if CALM_X86
    if (CALM_USE_AVX2()) {
        if (!calm__screen_scan_avx2(x, K, &lo4[0], &hi4[0], &x24[0])) { J->mode[i] = MODE_DIRECT; return; }
    } else
#endif
    {
        int32_t k = 0;
        for (; k + 4 <= K; k += 4)
            for (int l = 0; l < 4; l++) {
                const float f = x[k + l];
                lo4[l] = f < lo4[l] ? f : lo4[l];
                hi4[l] = f > hi4[l] ? f : hi4[l];
                nan4[l] += f - f;
                x24[l] += (double)f * (double)f;
            }
        for (; k < K; k++) {
            const float f = x[k];
            lo4[0] = f < lo4[0] ? f : lo4[0];
            hi4[0] = f > hi4[0] ? f : hi4[0];
            nan4[0] += f - f;
            x24[0] += (double)f * (double)f;
        }
        const float nanf_ = nan4[0] + nan4[1] + nan4[2] + nan4[3];
        if (nanf_ != nanf_) { J->mode[i] = MODE_DIRECT; return; }
    }
    double lo = lo4[0], hi = hi4[0];
    for (int l = 1; l < 4; l++) {
        if (lo4[l] < lo) lo = lo4[l];
        if (hi4[l] > hi) hi = hi4[l];
    }
    const double x2 = (x24[0] + x24[1]) + (x24[2] + x24[3]);
    const double mx = hi > -lo ? hi : -lo;
    if (mx == 0) { J->mode[i] = MODE_ZERO; return; }
    if (mx < SCREEN_MIN_ABS || sqrt(x2) > SCREEN_MAX_NORM) { J->mode[i] = MODE_DIRECT; return; }
    float s;
    int32_t z = 0;
    if (J->scheme == 0) {
        /* [min(x, 0), max(x, 0)] on 127 levels of a step: v in [0, 127], x~ = s (v + z) */
        s = (float)((hi - lo) / 126.0);
        const double zf = floor(lo / (double)s);
        z = zf < -127 ? -127 : zf > 0 ? 0 : (int32_t)zf;
    } else {
        s = (float)(mx / 127.0);
    }
    /* any rounding to the grid is valid (the residual is measured, not assumed): scale by 1/s and round
       half away from zero with a truncating conversion, no division or libm call per element */
    double xt24[4] = { 0, 0, 0, 0 }, r24[4] = { 0, 0, 0, 0 };
    int64_t sumv = 0;
#if CALM_X86
    if (CALM_USE_AVX2()) {
        calm__screen_quant_avx2(x, K, s, z, J->scheme == 0 ? 0 : -127, v, &xt24[0], &r24[0], &sumv);
    } else
#endif
    {
        const double inv = 1.0 / (double)s, sd = (double)s, zd = (double)z;
        const double lo_v = J->scheme == 0 ? 0.0 : -127.0;
        int32_t sum4[4] = { 0, 0, 0, 0 };
        int32_t k = 0;
        for (; k + 4 <= K; k += 4)
            for (int l = 0; l < 4; l++) {
                const double d = x[k + l];
                double q = d * inv - zd;
                q = q < lo_v ? lo_v : q > 127.0 ? 127.0 : q;
                const int32_t t = (int32_t)(q + (q >= 0 ? 0.5 : -0.5));
                v[k + l] = (uint8_t)(int8_t)t;
                const double xt = sd * ((double)t + zd); /* exact in double */
                const double r = d - xt;
                xt24[l] += xt * xt;
                r24[l] += r * r;
                sum4[l] += t;
            }
        for (; k < K; k++) {
            const double d = x[k];
            double q = d * inv - zd;
            q = q < lo_v ? lo_v : q > 127.0 ? 127.0 : q;
            const int32_t t = (int32_t)(q + (q >= 0 ? 0.5 : -0.5));
            v[k] = (uint8_t)(int8_t)t;
            const double xt = sd * ((double)t + zd);
            const double r = d - xt;
            xt24[0] += xt * xt;
            r24[0] += r * r;
            sum4[0] += t;
        }
        sumv = (int64_t)sum4[0] + sum4[1] + sum4[2] + sum4[3];
    }
    memset(v + K, 0, J->ldv - (size_t)K);
    const double xt2 = (xt24[0] + xt24[1]) + (xt24[2] + xt24[3]), r2 = (r24[0] + r24[1]) + (r24[2] + r24[3]);
    const double a = sqrt(xt2) * INFLATE;
    const double b = (sqrt(r2) + J->gamma * sqrt(x2)) * INFLATE;
    calm__screen_row *R = &J->rows[i];
    R->s = s;
    R->z = z;
    R->corr = J->scheme == 1 ? (int32_t)(-128 * sumv) : 0;
    R->A = bound_up(a * (1.0 + 16 * U_F32));
    R->Bc = bound_up((b + 16 * U_F32 * a) * (1.0 + 16 * U_F32));
    R->pad_ = 0;
    J->mode[i] = MODE_SCREEN;
}

static void quant_task(void *ctx, int t, int thread_index) {
    (void)thread_index;
    const quant_job *J = (const quant_job *)ctx;
    int32_t r0, r1;
    range(t, J->n_tasks, J->m, &r0, &r1);
    for (int32_t i = r0; i < r1; i++) quantise_row(J, i);
}

/* ---------------------------------------------------------------- the screening pass */

typedef struct { int32_t j; float u; } cand;

typedef struct {
    cand *e;
    int32_t len, cap;
    uint8_t over, heap;
} cand_list;

typedef struct {
    float *lstar;     /* per screened row */
    cand_list *lists; /* per screened row */
    cand *slab;       /* SLOT_INIT per row */
    int oom;
} task_state;

typedef struct {
    const calm_screen *s;
    const calm__screen_impl *impl;
    const uint8_t *v;
    size_t ldv;
    const calm__screen_row *rows;
    int32_t ms;
    int32_t cap_max; /* most candidates a row keeps per task during the pass (more: the direct kernel) */
    int n_tasks;
    task_state *ts;
} screen_job;

/* keeps a row's candidates with u >= ls (in order) */
static void prune(cand_list *L, float ls) {
    int32_t o = 0;
    for (int32_t a = 0; a < L->len; a++)
        if (L->e[a].u >= ls) L->e[o++] = L->e[a];
    L->len = o;
}

/* cap: the most candidates a row keeps in one task after pruning against the task's running lower bound
   (which only rises); more marks the row for the direct kernel. It bounds memory; the decision on
   survivors is taken at the merge, against the best lower bound of all tasks. */
static void push(task_state *T, cand_list *L, float ls, int32_t j, float u, int32_t cap_max) {
    if (L->over) return;
    if (L->len == L->cap) {
        prune(L, ls);
        if (L->len >= cap_max) { L->over = 1; return; }
        if (L->len > L->cap / 2) {
            const int32_t cap = L->cap * 2;
            cand *e = (cand *)malloc((size_t)cap * sizeof(cand));
            if (!e) { L->over = 1; T->oom = 1; return; }
            memcpy(e, L->e, (size_t)L->len * sizeof(cand));
            if (L->heap) free(L->e);
            L->e = e;
            L->cap = cap;
            L->heap = 1;
        }
    }
    L->e[L->len].j = j;
    L->e[L->len].u = u;
    L->len++;
}

static void screen_task(void *ctx, int t, int thread_index) {
    (void)thread_index;
    const screen_job *J = (const screen_job *)ctx;
    const calm_screen *s = J->s;
    const calm__screen_impl *impl = J->impl;
    task_state *T = &J->ts[t];
    int32_t p0, p1;
    range(t, J->n_tasks, s->n_panels, &p0, &p1);
    const int32_t ms = J->ms, G = s->groups;
    for (int32_t i = 0; i < ms; i++) {
        T->lstar[i] = -INFINITY;
        T->lists[i].e = T->slab + (size_t)i * SLOT_INIT;
        T->lists[i].len = 0;
        T->lists[i].cap = SLOT_INIT;
        T->lists[i].over = 0;
        T->lists[i].heap = 0;
    }
    int32_t raw[12 * CALM_PANEL] __attribute__((aligned(64)));
    float u[12 * CALM_PANEL] __attribute__((aligned(64)));
    uint32_t mask[12];
    const int mr = impl->mr;
    const int tiles = (ms + mr - 1) / mr;
    const size_t panel_bytes = (size_t)G * 128;
    const int32_t lines = (int32_t)(panel_bytes / 64);
    /* few rows: the matrix streams from memory once, and the first row tile of each panel prefetches ahead
       in it (into the next panel at its end); many rows: each tile fetches a share of the next panel into L2 */
    const int stream = ms <= 8;
    for (int32_t p = p0; p < p1; p++) {
        const int8_t *panel = s->q + (size_t)p * panel_bytes;
        const int8_t *next = p + 1 < p1 ? panel + panel_bytes : NULL;
        calm__screen_cols cols = { s->sigma + (size_t)p * CALM_PANEL, s->colsum + (size_t)p * CALM_PANEL,
                                   s->rho + (size_t)p * CALM_PANEL, s->omega + (size_t)p * CALM_PANEL,
                                   s->rho_max[p], s->omega_max[p] };
        const int ncols = s->n - p * CALM_PANEL < CALM_PANEL ? s->n - p * CALM_PANEL : CALM_PANEL;
        for (int tile = 0; tile < tiles; tile++) {
            const int32_t r0 = tile * mr;
            const int mri = ms - r0 < mr ? ms - r0 : mr;
            /* many rows: a share of the next panel is fetched into L2 by each tile, so the first pass
               over it does not wait for memory */
            if (next && !stream) {
                const int32_t l0 = (int32_t)((int64_t)lines * tile / tiles), l1 = (int32_t)((int64_t)lines * (tile + 1) / tiles);
                for (int32_t l = l0; l < l1; l++) __builtin_prefetch(next + (size_t)l * 64, 0, 2);
            }
            impl->tile(mri, G, J->v + (size_t)r0 * J->ldv, J->ldv, panel, raw, stream && tile == 0);
            impl->finish(mri, raw, J->rows + r0, &cols, ncols, T->lstar + r0, u, mask, NULL);
            for (int r = 0; r < mri; r++) {
                uint32_t mk = mask[r];
                if (!mk) continue;
                cand_list *L = &T->lists[r0 + r];
                const float ls = T->lstar[r0 + r];
                while (mk) {
                    const int c = __builtin_ctz(mk);
                    mk &= mk - 1;
                    push(T, L, ls, p * CALM_PANEL + c, u[r * CALM_PANEL + c], J->cap_max);
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- the exact pass */

/*
 * Survivors are recomputed panel by panel: a column of a packed panel spans every cache line of the
 * panel, so each panel that holds survivors is read once, by multi-row tiles over the x rows that need
 * it (gathered), rather than once per row. Entries are grouped by row (roff / sj: increasing j within a
 * row) and by panel (poff / pe: entry indices, rows increasing), and vals receives each entry's exact value.
 */
typedef struct {
    const calm_matrix *w;
    const float *x;
    size_t ldx;
    const int32_t *rowmap;   /* screened row -> row of x */
    const int32_t *entry_row;/* entry -> screened row */
    const int32_t *sj;       /* entry -> vocabulary index */
    const int64_t *poff;     /* n_panels + 1 */
    const int32_t *pe;
    float *vals;
    int32_t n_panels;
    int64_t total;
    int n_tasks;
    _Atomic int oom;
} exact_job;

static void exact_task(void *ctx, int t, int thread_index) {
    (void)thread_index;
    exact_job *E = (exact_job *)ctx;
    const calm_gemm_impl *g = calm__gemm_active();
    const calm_tile_fn tile = g->tile[E->w->dtype];
    const int mr = g->mr > 16 ? 16 : g->mr;
    const int32_t K = E->w->k;
    const size_t panel_bytes = (size_t)K * CALM_PANEL * calm_dtype_size(E->w->dtype);
    /* this task's panels: those whose first entry falls in its share of the entries */
    const int64_t e0 = E->total * t / E->n_tasks, e1 = E->total * (t + 1) / E->n_tasks;
    int32_t p = 0, hi = E->n_panels;
    while (p < hi) { const int32_t mid = (p + hi) / 2; if (E->poff[mid] < e0) p = mid + 1; else hi = mid; }
    float *xbuf = (float *)aligned_alloc(64, (((size_t)mr * (size_t)K * sizeof(float)) + 63) & ~(size_t)63);
    float obuf[16 * CALM_PANEL] __attribute__((aligned(64)));
    if (!xbuf) { atomic_store(&E->oom, 1); return; }
    for (; p < E->n_panels && E->poff[p] < e1; p++) {
        const int64_t a0 = E->poff[p], a1 = E->poff[p + 1];
        if (a0 == a1) continue;
        const void *panel = (const unsigned char *)E->w->data + (size_t)p * panel_bytes;
        int64_t a = a0;
        while (a < a1) {
            /* up to mr distinct rows (a row's entries in this panel are consecutive) */
            int nr = 0;
            int64_t b = a;
            int32_t last = -1;
            while (b < a1) {
                const int32_t r = E->entry_row[E->pe[b]];
                if (r != last) {
                    if (nr == mr) break;
                    memcpy(xbuf + (size_t)nr * K, E->x + (size_t)E->rowmap[r] * E->ldx, (size_t)K * sizeof(float));
                    nr++;
                    last = r;
                }
                b++;
            }
            tile(nr, K, xbuf, (size_t)K, panel, NULL, obuf, CALM_PANEL, NULL, 0, CALM_PANEL);
            int slot = -1;
            last = -1;
            for (int64_t c = a; c < b; c++) {
                const int32_t e = E->pe[c], r = E->entry_row[e];
                if (r != last) { slot++; last = r; }
                E->vals[e] = obuf[slot * CALM_PANEL + (E->sj[e] - p * CALM_PANEL)];
            }
            a = b;
        }
    }
    free(xbuf);
}

/* ---------------------------------------------------------------- statistics */

static _Atomic int64_t g_totals[6];
static _Atomic int64_t g_total_max;

static void add_totals(const calm_screen_stats *st) {
    atomic_fetch_add(&g_totals[0], st->rows);
    atomic_fetch_add(&g_totals[1], st->screened_rows);
    atomic_fetch_add(&g_totals[2], st->zero_rows);
    atomic_fetch_add(&g_totals[3], st->direct_rows);
    atomic_fetch_add(&g_totals[4], st->survivors);
    atomic_fetch_add(&g_totals[5], st->exact_panels);
    int64_t cur = atomic_load(&g_total_max);
    while (st->max_survivors > cur && !atomic_compare_exchange_weak(&g_total_max, &cur, st->max_survivors)) {}
}

void calm_screen_stats_total(calm_screen_stats *out, int reset) {
    calm_screen_stats st;
    if (reset) {
        st.rows = atomic_exchange(&g_totals[0], 0);
        st.screened_rows = atomic_exchange(&g_totals[1], 0);
        st.zero_rows = atomic_exchange(&g_totals[2], 0);
        st.direct_rows = atomic_exchange(&g_totals[3], 0);
        st.survivors = atomic_exchange(&g_totals[4], 0);
        st.exact_panels = atomic_exchange(&g_totals[5], 0);
        st.max_survivors = atomic_exchange(&g_total_max, 0);
    } else {
        st.rows = atomic_load(&g_totals[0]);
        st.screened_rows = atomic_load(&g_totals[1]);
        st.zero_rows = atomic_load(&g_totals[2]);
        st.direct_rows = atomic_load(&g_totals[3]);
        st.survivors = atomic_load(&g_totals[4]);
        st.exact_panels = atomic_load(&g_totals[5]);
        st.max_survivors = atomic_load(&g_total_max);
    }
    if (out) *out = st;
}

/* ---------------------------------------------------------------- the driver */

/* rows in `list` (count nd) by calm_linear_argmax, gathered */
static void direct_rows(calm_pool *pool, const float *x, size_t ldx, const calm_matrix *w, const int32_t *list, int32_t nd,
                        int32_t *out_index, float *out_max) {
    if (nd <= 0) return;
    const int32_t K = w->k;
    float *xb = (float *)malloc((size_t)nd * (size_t)K * sizeof(float));
    int32_t *ib = (int32_t *)malloc((size_t)nd * sizeof(int32_t));
    float *mb = (float *)malloc((size_t)nd * sizeof(float));
    if (!xb || !ib || !mb) {
        /* no memory for the gather: one row at a time, in place */
        for (int32_t a = 0; a < nd; a++)
            calm_linear_argmax(pool, x + (size_t)list[a] * ldx, 1, ldx, w, out_index + list[a], out_max ? out_max + list[a] : NULL);
    } else {
        for (int32_t a = 0; a < nd; a++) memcpy(xb + (size_t)a * K, x + (size_t)list[a] * ldx, (size_t)K * sizeof(float));
        calm_linear_argmax(pool, xb, nd, (size_t)K, w, ib, mb);
        for (int32_t a = 0; a < nd; a++) {
            out_index[list[a]] = ib[a];
            if (out_max) out_max[list[a]] = mb[a];
        }
    }
    free(xb);
    free(ib);
    free(mb);
}

void calm_linear_argmax_screened(calm_pool *pool, const float *x, int32_t m, size_t ldx, const calm_matrix *w,
                                 const calm_screen *s, int32_t *out_index, float *out_max, calm_screen_stats *stats) {
    calm_screen_stats st;
    memset(&st, 0, sizeof st);
    if (m <= 0) { if (stats) *stats = st; return; }
    st.rows = m;
    if (!s || s->n != w->n || s->k != w->k || s->wdata != w->data || s->dtype != w->dtype) {
        calm_linear_argmax(pool, x, m, ldx, w, out_index, out_max);
        st.direct_rows = m;
        add_totals(&st);
        if (stats) *stats = st;
        return;
    }
    const calm__screen_impl *impl = screen_impl();
    const int32_t K = s->k, G = s->groups;
    const size_t ldv = ((size_t)G * 4 + 63) & ~(size_t)63;
    const int threads = calm_pool_size(pool);
    PHASE_START();

    /* 1. quantise every row */
    uint8_t *v = (uint8_t *)aligned_alloc(64, (size_t)m * ldv);
    calm__screen_row *rows = (calm__screen_row *)malloc((size_t)m * sizeof(calm__screen_row));
    int8_t *mode = (int8_t *)malloc((size_t)m);
    int32_t *rowmap = (int32_t *)malloc((size_t)m * sizeof(int32_t));
    int32_t *dlist = (int32_t *)malloc((size_t)m * sizeof(int32_t));
    if (!v || !rows || !mode || !rowmap || !dlist) {
        free(v); free(rows); free(mode); free(rowmap); free(dlist);
        calm_linear_argmax(pool, x, m, ldx, w, out_index, out_max);
        st.direct_rows = m;
        add_totals(&st);
        if (stats) *stats = st;
        return;
    }
    quant_job Q;
    Q.x = x; Q.ldx = ldx; Q.m = m; Q.K = K; Q.groups = G; Q.ldv = ldv; Q.scheme = impl->scheme;
    Q.gamma = (double)K * U_F32 / (1.0 - (double)K * U_F32);
    Q.v = v; Q.rows = rows; Q.mode = mode;
    Q.n_tasks = threads > 1 && (double)m * K >= 65536 ? (m < 4 * threads ? m : 4 * threads) : 1;
    if (Q.n_tasks == 1) quant_task(&Q, 0, 0);
    else calm_pool_run(pool, Q.n_tasks, quant_task, &Q);
    PHASE("quantise");
    /* screened rows first, compacted in order; zero rows answered; the rest listed for the direct kernel */
    int32_t ms = 0, nd = 0;
    for (int32_t i = 0; i < m; i++) {
        if (mode[i] == MODE_SCREEN) {
            if (ms != i) {
                memcpy(v + (size_t)ms * ldv, v + (size_t)i * ldv, ldv);
                rows[ms] = rows[i];
            }
            rowmap[ms++] = i;
        } else if (mode[i] == MODE_ZERO) {
            out_index[i] = 0;
            if (out_max) out_max[i] = 0.0f;
            st.zero_rows++;
        } else {
            dlist[nd++] = i;
        }
    }

    if (ms > 0) {
        /* 2. screen the vocabulary */
        screen_job S;
        S.s = s; S.impl = impl; S.v = v; S.ldv = ldv; S.rows = rows; S.ms = ms;
        S.cap_max = 8 * (s->n / 128 > 64 ? s->n / 128 : 64);
        const double work = (double)ms * (double)s->n * (double)K;
        S.n_tasks = 1;
        if (threads > 1 && work >= 1e6)
            S.n_tasks = work >= 2.5e7 && s->n_panels >= 8 * threads ? 4 * threads : threads;
        if (S.n_tasks > s->n_panels) S.n_tasks = s->n_panels;
        S.ts = (task_state *)calloc((size_t)S.n_tasks, sizeof(task_state));
        float *lglobal = (float *)malloc((size_t)ms * sizeof(float));
        uint8_t *undecided = (uint8_t *)calloc((size_t)ms, 1);
        int ok = S.ts && lglobal && undecided;
        for (int t = 0; ok && t < S.n_tasks; t++) {
            S.ts[t].lstar = (float *)malloc((size_t)ms * sizeof(float));
            S.ts[t].lists = (cand_list *)calloc((size_t)ms, sizeof(cand_list)); /* heap = 0 until the task runs */
            S.ts[t].slab = (cand *)malloc((size_t)ms * SLOT_INIT * sizeof(cand));
            ok = S.ts[t].lstar && S.ts[t].lists && S.ts[t].slab;
        }
        if (ok) {
            if (S.n_tasks == 1) screen_task(&S, 0, 0);
            else calm_pool_run(pool, S.n_tasks, screen_task, &S);
            PHASE("screen");
            /* 3. merge: the best lower bound over all tasks; rows with too many survivors go direct */
            int64_t *roff = (int64_t *)malloc(((size_t)ms + 1) * sizeof(int64_t));
            /* a row's survivors are recomputed on their panels while they touch at most half of them:
               each touched panel costs what the direct kernel pays for it (the same tile over the whole
               panel), so beyond that the direct kernel is as cheap and streams. A count of survivors
               (formerly max(64, n / 128)) sent rows of 400-1000 survivors spread over a third of the
               panels to the direct kernel: random-weight GPT-2 greedy rows and every Token Maturation
               commit on random weights, reading all n·k weights instead of a third of them. */
            int32_t *stamp = roff ? (int32_t *)malloc((size_t)s->n_panels * sizeof(int32_t)) : NULL;
            if (stamp)
                for (int32_t p = 0; p < s->n_panels; p++) stamp[p] = -1;
            else { free(roff); roff = NULL; } /* out of memory: every row to the direct kernel */
            int64_t total = 0;
            for (int32_t r = 0; ok && r < ms; r++) {
                float lg = -INFINITY;
                int over = 0;
                for (int t = 0; t < S.n_tasks; t++) {
                    if (S.ts[t].lstar[r] > lg) lg = S.ts[t].lstar[r];
                    over |= S.ts[t].lists[r].over | S.ts[t].oom;
                }
                lglobal[r] = lg;
                over |= !stamp;
                int64_t cnt = 0, touched = 0;
                for (int t = 0; !over && t < S.n_tasks; t++) {
                    const cand_list *L = &S.ts[t].lists[r];
                    for (int32_t a = 0; a < L->len; a++)
                        if (L->e[a].u >= lg) {
                            cnt++;
                            const int32_t p = L->e[a].j / CALM_PANEL;
                            if (stamp[p] != r) { stamp[p] = r; touched++; }
                        }
                }
                undecided[r] = (uint8_t)(over || cnt == 0 || 2 * touched > s->n_panels);
                if (roff) { roff[r] = total; total += undecided[r] ? 0 : cnt; }
            }
            /* 4. recompute the survivors exactly, panel by panel */
            const int32_t np = s->n_panels;
            int32_t *sj = roff ? (int32_t *)malloc((size_t)(total ? total : 1) * sizeof(int32_t)) : NULL;
            int32_t *erow = sj ? (int32_t *)malloc((size_t)(total ? total : 1) * sizeof(int32_t)) : NULL;
            int32_t *pe = erow ? (int32_t *)malloc((size_t)(total ? total : 1) * sizeof(int32_t)) : NULL;
            float *vals = pe ? (float *)malloc((size_t)(total ? total : 1) * sizeof(float)) : NULL;
            int64_t *poff = vals ? (int64_t *)calloc((size_t)np + 1, sizeof(int64_t)) : NULL;
            if (poff) {
                roff[ms] = total;
                int64_t e = 0;
                for (int32_t r = 0; r < ms; r++) {
                    if (undecided[r]) continue;
                    for (int t = 0; t < S.n_tasks; t++) {
                        const cand_list *L = &S.ts[t].lists[r];
                        for (int32_t a = 0; a < L->len; a++)
                            if (L->e[a].u >= lglobal[r]) { sj[e] = L->e[a].j; erow[e] = r; poff[L->e[a].j / CALM_PANEL + 1]++; e++; }
                    }
                }
                int64_t used = 0;
                for (int32_t p = 0; p < np; p++) { used += poff[p + 1] != 0; poff[p + 1] += poff[p]; }
                int64_t *fill = (int64_t *)malloc((size_t)np * sizeof(int64_t));
                if (fill) {
                    memcpy(fill, poff, (size_t)np * sizeof(int64_t));
                    for (int64_t q = 0; q < total; q++) pe[fill[sj[q] / CALM_PANEL]++] = (int32_t)q;
                    free(fill);
                    exact_job E;
                    E.w = w; E.x = x; E.ldx = ldx; E.rowmap = rowmap; E.entry_row = erow; E.sj = sj; E.poff = poff;
                    E.pe = pe; E.vals = vals; E.n_panels = np; E.total = total;
                    atomic_init(&E.oom, 0);
                    E.n_tasks = threads > 1 && total >= 8 ? 4 * threads : 1;
                    if (E.n_tasks == 1) exact_task(&E, 0, 0);
                    else calm_pool_run(pool, E.n_tasks, exact_task, &E);
                    if (atomic_load(&E.oom)) {
                        memset(undecided, 1, (size_t)ms);
                    } else {
                        /* 5. each row's first maximum, in increasing index */
                        for (int32_t r = 0; r < ms; r++) {
                            if (undecided[r]) continue;
                            float best = 0;
                            int32_t bidx = -1;
                            for (int64_t q = roff[r]; q < roff[r + 1]; q++)
                                if (bidx < 0 || calm__argmax_better(vals[q], best)) { best = vals[q]; bidx = sj[q]; }
                            out_index[rowmap[r]] = bidx;
                            if (out_max) out_max[rowmap[r]] = best;
                            const int64_t here = roff[r + 1] - roff[r];
                            st.survivors += here;
                            if (here > st.max_survivors) st.max_survivors = here;
                        }
                        st.exact_panels = used;
                    }
                    PHASE("exact");
                } else {
                    memset(undecided, 1, (size_t)ms);
                }
            } else {
                memset(undecided, 1, (size_t)ms);
            }
            free(roff); free(sj); free(erow); free(pe); free(vals); free(poff); free(stamp);
            for (int32_t r = 0; r < ms; r++) {
                if (undecided[r]) dlist[nd++] = rowmap[r];
                else st.screened_rows++;
            }
        } else {
            for (int32_t r = 0; r < ms; r++) dlist[nd++] = rowmap[r];
        }
        for (int t = 0; S.ts && t < S.n_tasks; t++) {
            if (S.ts[t].lists)
                for (int32_t r = 0; r < ms; r++)
                    if (S.ts[t].lists[r].heap) free(S.ts[t].lists[r].e);
            free(S.ts[t].lstar);
            free(S.ts[t].lists);
            free(S.ts[t].slab);
        }
        free(S.ts);
        free(lglobal);
        free(undecided);
    }

    /* 5. what the screen left: the direct kernel, rows gathered in order */
    st.direct_rows = nd;
    if (nd > 1) {
        /* dlist may hold screened rows appended after direct ones: sort (insertion: nd is small or sorted runs) */
        for (int32_t a = 1; a < nd; a++) {
            const int32_t key = dlist[a];
            int32_t b = a - 1;
            while (b >= 0 && dlist[b] > key) { dlist[b + 1] = dlist[b]; b--; }
            dlist[b + 1] = key;
        }
    }
    direct_rows(pool, x, ldx, w, dlist, nd, out_index, out_max);
    free(v); free(rows); free(mode); free(rowmap); free(dlist);
    add_totals(&st);
    if (stats) *stats = st;
}

/* ---------------------------------------------------------------- checking the bounds (tests) */

int64_t calm_screen_check_bounds(const float *x, int32_t m, size_t ldx, const calm_matrix *w, const calm_screen *s,
                                 float *out_slack) {
    if (!s || m <= 0 || s->n != w->n || s->k != w->k || s->wdata != w->data) return -1;
    const calm__screen_impl *impl = screen_impl();
    const int32_t K = s->k, G = s->groups, n = s->n;
    const size_t ldv = ((size_t)G * 4 + 63) & ~(size_t)63;
    uint8_t *v = (uint8_t *)aligned_alloc(64, ldv);
    float *y = (float *)malloc((size_t)n * sizeof(float));
    if (!v || !y) { free(v); free(y); return -1; }
    int64_t violations = 0;
    for (int32_t i = 0; i < m; i++) {
        calm__screen_row R;
        int8_t mode;
        quant_job Q;
        memset(&Q, 0, sizeof Q);
        Q.x = x + (size_t)i * ldx; Q.ldx = ldx; Q.m = 1; Q.K = K; Q.groups = G; Q.ldv = ldv; Q.scheme = impl->scheme;
        Q.gamma = (double)K * U_F32 / (1.0 - (double)K * U_F32);
        Q.v = v; Q.rows = &R; Q.mode = &mode;
        quantise_row(&Q, 0);
        if (mode != MODE_SCREEN) { out_slack[i] = NAN; continue; }
        calm_linear(NULL, x + (size_t)i * ldx, 1, ldx, w, NULL, y, (size_t)n, 0); /* the exact chains */
        double worst = 0;
        for (int32_t p = 0; p < s->n_panels; p++) {
            int32_t raw[CALM_PANEL];
            float u[CALM_PANEL], l[CALM_PANEL], ls = -INFINITY;
            uint32_t mk;
            calm__screen_cols cols = { s->sigma + (size_t)p * CALM_PANEL, s->colsum + (size_t)p * CALM_PANEL,
                                       s->rho + (size_t)p * CALM_PANEL, s->omega + (size_t)p * CALM_PANEL,
                                       INFINITY, INFINITY }; /* every column checked on its own */
            const int ncols = n - p * CALM_PANEL < CALM_PANEL ? n - p * CALM_PANEL : CALM_PANEL;
            impl->tile(1, G, v, ldv, s->q + (size_t)p * (size_t)G * 128, raw, 0);
            impl->finish(1, raw, &R, &cols, ncols, &ls, u, &mk, l);
            for (int c = 0; c < ncols; c++) {
                const double e = y[p * CALM_PANEL + c];
                if (!(e <= u[c] && e >= l[c])) violations++;
                const double mid = 0.5 * ((double)u[c] + (double)l[c]), half = 0.5 * ((double)u[c] - (double)l[c]);
                const double ratio = half > 0 ? fabs(e - mid) / half : (e == mid ? 0 : INFINITY);
                if (ratio > worst) worst = ratio;
            }
        }
        out_slack[i] = (float)worst;
    }
    free(v);
    free(y);
    return violations;
}
