/*
 * Persistent worker pool: the caller plus n-1 pthreads.
 *
 * A run publishes its job and then a 64-bit ticket = (generation << 32 | next task index).
 * Threads claim task indices with a CAS on the ticket that also checks the generation, so a
 * worker that wakes late can never claim a task from a later run. When the last task of a run
 * has finished the caller closes the ticket (index = CLOSED) before returning.
 * Idle workers spin on the ticket for ~SPIN_NS, then park on a condition variable.
 */
#define _GNU_SOURCE
#include "internal.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#if CALM_X86
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

#define SPIN_NS 100000ull
#define WAIT_SPINS 2048 /* pauses (tens of microseconds) before the caller yields while waiting */
#define CLOSED 0xFFFFFFFFull

struct calm_pool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t run_lock;   /* serialises calm_pool_run callers */
    pthread_mutex_t park_lock;
    pthread_cond_t park_cond;
    _Atomic uint64_t ticket;    /* generation << 32 | next index (CLOSED when the run is over) */
    _Atomic int sleepers;
    _Atomic int stop;
    /* job of the current generation (written before the ticket is published) */
    _Atomic(calm_task_fn) fn;
    _Atomic(void *) ctx;
    _Atomic int n_tasks;
    _Atomic int isa_override;   /* the caller's calm_isa_force_thread level (-1: none) */
    _Atomic int done;           /* tasks finished in the current run */
};

typedef struct { calm_pool *pool; int index; } worker_arg;

static _Thread_local const calm_pool *tl_running_pool = NULL;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Claims and runs tasks of generation gen until none are left. */
static void run_tasks(calm_pool *p, uint32_t gen, int thread_index) {
    calm_task_fn fn = atomic_load_explicit(&p->fn, memory_order_acquire);
    void *ctx = atomic_load_explicit(&p->ctx, memory_order_acquire);
    int n = atomic_load_explicit(&p->n_tasks, memory_order_acquire);
    int isa = atomic_load_explicit(&p->isa_override, memory_order_acquire);
    int own = calm_isa_thread_override();
    if (thread_index != 0) calm__isa_set_thread_override(isa);
    uint64_t t = atomic_load_explicit(&p->ticket, memory_order_acquire);
    for (;;) {
        if ((uint32_t)(t >> 32) != gen) break;
        uint32_t idx = (uint32_t)t;
        if (idx == (uint32_t)CLOSED || (int64_t)idx >= n) break;
        if (atomic_compare_exchange_weak_explicit(&p->ticket, &t, t + 1, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            fn(ctx, (int)idx, thread_index);
            atomic_fetch_add_explicit(&p->done, 1, memory_order_acq_rel);
            t = atomic_load_explicit(&p->ticket, memory_order_acquire);
        }
    }
    if (thread_index != 0) calm__isa_set_thread_override(own);
}

static void *worker_main(void *arg) {
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    calm_pool *p = wa.pool;
    tl_running_pool = p;
    uint32_t seen = 0; /* generation 0 is the initial, closed ticket */
    for (;;) {
        uint64_t t = atomic_load_explicit(&p->ticket, memory_order_acquire);
        if ((uint32_t)(t >> 32) == seen) {
            /* spin, then park */
            uint64_t start = now_ns();
            int spins = 0;
            for (;;) {
                t = atomic_load_explicit(&p->ticket, memory_order_acquire);
                if ((uint32_t)(t >> 32) != seen || atomic_load_explicit(&p->stop, memory_order_relaxed)) break;
                CPU_RELAX();
                if (++spins == 64) {
                    spins = 0;
                    if (now_ns() - start > SPIN_NS) {
                        pthread_mutex_lock(&p->park_lock);
                        atomic_fetch_add(&p->sleepers, 1);
                        while ((uint32_t)(atomic_load(&p->ticket) >> 32) == seen && !atomic_load(&p->stop))
                            pthread_cond_wait(&p->park_cond, &p->park_lock);
                        atomic_fetch_sub(&p->sleepers, 1);
                        pthread_mutex_unlock(&p->park_lock);
                        start = now_ns();
                    }
                }
            }
        }
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        t = atomic_load_explicit(&p->ticket, memory_order_acquire);
        seen = (uint32_t)(t >> 32);
        run_tasks(p, seen, wa.index);
    }
    return NULL;
}

calm_pool *calm_pool_create(int n_threads) {
    if (n_threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = c > 0 ? (int)c : 1;
    }
    if (n_threads > 1024) n_threads = 1024;
    calm_pool *p = (calm_pool *)calloc(1, sizeof(calm_pool));
    if (!p) return NULL;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->run_lock, NULL);
    pthread_mutex_init(&p->park_lock, NULL);
    pthread_cond_init(&p->park_cond, NULL);
    atomic_init(&p->ticket, CLOSED);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->stop, 0);
    atomic_init(&p->fn, NULL);
    atomic_init(&p->ctx, NULL);
    atomic_init(&p->n_tasks, 0);
    atomic_init(&p->done, 0);
    if (n_threads > 1) {
        p->threads = (pthread_t *)calloc((size_t)n_threads - 1, sizeof(pthread_t));
        if (!p->threads) { free(p); return NULL; }
        for (int i = 1; i < n_threads; i++) {
            worker_arg *wa = (worker_arg *)malloc(sizeof(worker_arg));
            int ok = wa != NULL;
            if (ok) {
                wa->pool = p;
                wa->index = i;
                ok = pthread_create(&p->threads[i - 1], NULL, worker_main, wa) == 0;
                if (!ok) free(wa);
            }
            if (!ok) { /* run with the threads we have */
                p->n_threads = i;
                break;
            }
        }
    }
    return p;
}

void calm_pool_destroy(calm_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->run_lock);
    atomic_store(&p->stop, 1);
    /* bump the generation so spinning workers notice, then wake parked ones */
    uint64_t t = atomic_load(&p->ticket);
    atomic_store(&p->ticket, (((t >> 32) + 1) << 32) | CLOSED);
    pthread_mutex_lock(&p->park_lock);
    pthread_cond_broadcast(&p->park_cond);
    pthread_mutex_unlock(&p->park_lock);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i - 1], NULL);
    pthread_mutex_unlock(&p->run_lock);
    pthread_mutex_destroy(&p->run_lock);
    pthread_mutex_destroy(&p->park_lock);
    pthread_cond_destroy(&p->park_cond);
    free(p->threads);
    free(p);
}

int calm_pool_size(const calm_pool *p) { return p ? p->n_threads : 1; }

void calm_pool_run(calm_pool *p, int n_tasks, calm_task_fn fn, void *ctx) {
    if (n_tasks <= 0 || !fn) return;
    /* serial: no pool, one thread, one task, or a nested call from inside one of this pool's tasks */
    if (!p || p->n_threads <= 1 || n_tasks == 1 || tl_running_pool == p) {
        for (int i = 0; i < n_tasks; i++) fn(ctx, i, 0);
        return;
    }
    pthread_mutex_lock(&p->run_lock);
    const calm_pool *saved = tl_running_pool;
    tl_running_pool = p;
    atomic_store_explicit(&p->fn, fn, memory_order_release);
    atomic_store_explicit(&p->ctx, ctx, memory_order_release);
    atomic_store_explicit(&p->n_tasks, n_tasks, memory_order_release);
    atomic_store_explicit(&p->isa_override, calm_isa_thread_override(), memory_order_release);
    atomic_store_explicit(&p->done, 0, memory_order_release);
    uint64_t t = atomic_load(&p->ticket);
    uint32_t gen = (uint32_t)(t >> 32) + 1;
    atomic_store(&p->ticket, (uint64_t)gen << 32); /* seq_cst: pairs with the sleepers check */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->park_lock);
        pthread_cond_broadcast(&p->park_cond);
        pthread_mutex_unlock(&p->park_lock);
    }
    run_tasks(p, gen, 0);
    /* wait for tasks other threads claimed; after a short spin, yield between checks: a worker that
       lost its core mid-task (a machine shared with other processes) gets it back sooner than if
       the caller spun through its whole time slice */
    for (unsigned spins = 0; atomic_load_explicit(&p->done, memory_order_acquire) < n_tasks;) {
        CPU_RELAX();
        if (++spins == WAIT_SPINS) {
            spins = 0;
            sched_yield();
        }
    }
    atomic_store(&p->ticket, ((uint64_t)gen << 32) | CLOSED);
    tl_running_pool = saved;
    pthread_mutex_unlock(&p->run_lock);
}
