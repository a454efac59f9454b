// bench-c-search: the C baseline for searching a region for a byte pattern.
// process_vm_readv in 4 MiB calls into one reused buffer, memmem over each
// chunk, carrying the last (pattern length - 1) bytes over to the next chunk so
// a match across a chunk boundary is found. Stops after MAX hits (default 1,
// like `vmio-ptrace search --max 1`). Prints `hit 0xADDR` a hit, then
// `seconds S`.
//
//   bench-c-search PID ADDR LEN HEX [MAX]        (HEX: "1122334455667788")
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#define CHUNK (4u << 20)
#define MAXPAT 256

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Page-aligned, each chunk read to buf + MAXPAT (a cache line's start: a destination off the
// lines makes the kernel's copy split every line, about a quarter slower), the bytes carried
// from the previous chunk just before it.
static char buf[MAXPAT + CHUNK] __attribute__((aligned(4096)));

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: bench-c-search PID ADDR LEN HEX [MAX]\n");
        return 64;
    }
    pid_t pid = (pid_t)strtol(argv[1], NULL, 10);
    unsigned long long addr = strtoull(argv[2], NULL, 0);
    size_t len = (size_t)strtoull(argv[3], NULL, 0);
    unsigned long max = argc > 5 ? strtoul(argv[5], NULL, 10) : 1;
    unsigned char pat[MAXPAT];
    size_t plen = 0;
    for (const char *h = argv[4]; *h;) {
        if (*h == ' ') { h++; continue; }
        int a = hexval(h[0]), b = a < 0 ? -1 : hexval(h[1]);
        if (a < 0 || b < 0 || plen == MAXPAT) {
            fprintf(stderr, "bench-c-search: bad pattern\n");
            return 64;
        }
        pat[plen++] = (unsigned char)(a << 4 | b);
        h += 2;
    }
    if (plen == 0) return 64;

    double t0 = now();
    char *data = buf + MAXPAT;
    size_t done = 0, carry = 0;  // carry: bytes at data[-carry..0) from the previous chunk
    unsigned long hits = 0;
    while (done < len && hits < max) {
        size_t want = len - done < CHUNK ? len - done : CHUNK;
        struct iovec local = {data, want}, remote = {(void *)(addr + done), want};
        ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            fprintf(stderr, "bench-c-search: process_vm_readv at 0x%llx: %s\n", addr + done,
                    n < 0 ? strerror(errno) : "moved nothing");
            return 2;
        }
        size_t have = carry + (size_t)n;
        const char *start = data - carry, *at = start, *end = data + n;
        unsigned long long base = addr + done - carry;  // address of start
        while (hits < max) {
            const char *hit = memmem(at, (size_t)(end - at), pat, plen);
            if (!hit) break;
            printf("hit 0x%llx\n", base + (unsigned long long)(hit - start));
            hits++;
            at = hit + 1;
        }
        done += (size_t)n;
        carry = have < plen - 1 ? have : plen - 1;
        memmove(data - carry, end - carry, carry);
    }
    printf("seconds %.9f\n", now() - t0);
    return 0;
}
