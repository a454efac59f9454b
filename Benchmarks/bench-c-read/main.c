// bench-c-read: the raw C baseline for a bulk remote -> local read.
// process_vm_readv over [ADDR, ADDR+LEN) of PID in CHUNK-byte calls into one
// reused, pre-faulted buffer; nothing is done with the bytes. Prints one line
// `seconds S` and `cpu S` (user + system) a repetition (only the read loop is timed).
//
//   bench-c-read PID ADDR LEN [CHUNK] [REPS]     (CHUNK default 16 MiB, REPS 1)
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* CPU time of this process (user + system), for the `cpu S` line. */
static double cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: bench-c-read PID ADDR LEN [CHUNK] [REPS]\n");
        return 64;
    }
    pid_t pid = (pid_t)strtol(argv[1], NULL, 10);
    unsigned long long addr = strtoull(argv[2], NULL, 0);
    size_t len = (size_t)strtoull(argv[3], NULL, 0);
    size_t chunk = argc > 4 ? (size_t)strtoull(argv[4], NULL, 0) : (16u << 20);
    int reps = argc > 5 ? atoi(argv[5]) : 1;
    if (chunk == 0 || reps < 1) return 64;

    // Page-aligned: a destination off the cache lines makes the kernel's copy split every line.
    char *buf = aligned_alloc(4096, (chunk + 4095) & ~(size_t)4095);
    if (!buf) return 1;
    memset(buf, 0, chunk);  // pre-fault: the best case is a warm, reused buffer

    for (int r = 0; r < reps; r++) {
        double t0 = now(), c0 = cpu();
        size_t done = 0;
        while (done < len) {
            size_t want = len - done < chunk ? len - done : chunk;
            struct iovec local = {buf, want}, remote = {(void *)(addr + done), want};
            ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                fprintf(stderr, "bench-c-read: process_vm_readv at 0x%llx: %s\n", addr + done,
                        n < 0 ? strerror(errno) : "moved nothing");
                return 2;
            }
            done += (size_t)n;
        }
        printf("seconds %.9f\n", now() - t0);
        printf("cpu %.9f\n", cpu() - c0);
    }
    return 0;
}
