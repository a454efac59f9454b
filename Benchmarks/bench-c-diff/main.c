// bench-c-diff: the C baseline for `vmio-ptrace diff DUMP PID`: a region of a live process
// against its dump's data file. process_vm_readv and read(2) in 1 MiB chunks into two
// reused buffers, memcmp of each pair, and a byte-by-byte look only at chunks that differ.
// Prints `changed N` (bytes that differ), then `seconds S`.
//
//   bench-c-diff PID ADDR LEN FILE
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1u << 20)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

// Page-aligned: a destination off the cache lines makes the kernel's copy split every line.
static char live[CHUNK] __attribute__((aligned(4096))), saved[CHUNK] __attribute__((aligned(4096)));

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: bench-c-diff PID ADDR LEN FILE\n");
        return 64;
    }
    pid_t pid = (pid_t)strtol(argv[1], NULL, 10);
    unsigned long long addr = strtoull(argv[2], NULL, 0);
    size_t len = (size_t)strtoull(argv[3], NULL, 0);
    int fd = open(argv[4], O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        perror(argv[4]);
        return 1;
    }
    double t0 = now();
    size_t done = 0;
    unsigned long long changed = 0;
    while (done < len) {
        size_t want = len - done < CHUNK ? len - done : CHUNK;
        struct iovec local = {live, want}, remote = {(void *)(addr + done), want};
        ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n != (ssize_t)want) {
            fprintf(stderr, "bench-c-diff: process_vm_readv at 0x%llx: %s\n", addr + done,
                    n < 0 ? strerror(errno) : "short");
            return 2;
        }
        size_t got = 0;
        while (got < want) {
            ssize_t r = read(fd, saved + got, want - got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                fprintf(stderr, "bench-c-diff: %s is short\n", argv[4]);
                return 1;
            }
            got += (size_t)r;
        }
        if (memcmp(live, saved, want) != 0) {
            for (size_t i = 0; i < want; i++) changed += live[i] != saved[i];
        }
        done += want;
    }
    printf("changed %llu\nseconds %.6f\n", changed, now() - t0);
    return 0;
}
