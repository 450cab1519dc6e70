// LD_PRELOAD shim that counts heap allocations (malloc, calloc, realloc, memalign family) of a process and appends
// "<pid> <count>" to the file named by DTRAIN_MALLOC_COUNT_FILE at exit. Used by the no-allocation test: two runs
// that differ only in their number of training steps must report the same count (within a handful).
// Build: cc -shared -fPIC -O2 -o malloc-count.so malloc-count.c
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static atomic_long allocations;

void *malloc(size_t n) { atomic_fetch_add(&allocations, 1); return __libc_malloc(n); }
void *calloc(size_t n, size_t m) { atomic_fetch_add(&allocations, 1); return __libc_calloc(n, m); }
void *realloc(void *p, size_t n) { atomic_fetch_add(&allocations, 1); return __libc_realloc(p, n); }
void *memalign(size_t a, size_t n) { atomic_fetch_add(&allocations, 1); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { atomic_fetch_add(&allocations, 1); return __libc_memalign(a, n); }
int posix_memalign(void **out, size_t a, size_t n) {
    atomic_fetch_add(&allocations, 1);
    void *p = __libc_memalign(a, n);
    if (!p) return 12; /* ENOMEM */
    *out = p;
    return 0;
}

__attribute__((destructor)) static void report(void) {
    const char *path = getenv("DTRAIN_MALLOC_COUNT_FILE");
    if (!path) return;
    FILE *f = fopen(path, "a");
    if (!f) return;
    fprintf(f, "%d %ld\n", (int)getpid(), atomic_load(&allocations));
    fclose(f);
}
