// bench-c-dump: the C baseline for dumping a region to a file.
// process_vm_readv in 1 MiB calls into one reused buffer, then write(2) each
// chunk to FILE (created or truncated). With --fsync, fsync(2) the file before closing it
// and its directory afterwards, as `vmio-ptrace dump` does without --no-sync. Prints
// `seconds S` (open to close). With --write-only, nothing is read: the same warm buffer is
// written LEN bytes over, the floor of the file system's side alone (what no overlap of the
// reads can go below).
//
//   bench-c-dump PID ADDR LEN FILE [--fsync] [--write-only]
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
static char buf[CHUNK] __attribute__((aligned(4096)));

int main(int argc, char **argv) {
    int sync = 0, writeOnly = 0, bad = argc < 5;
    for (int k = 5; k < argc; k++) {
        if (strcmp(argv[k], "--fsync") == 0) sync = 1;
        else if (strcmp(argv[k], "--write-only") == 0) writeOnly = 1;
        else bad = 1;
    }
    if (bad) {
        fprintf(stderr, "usage: bench-c-dump PID ADDR LEN FILE [--fsync] [--write-only]\n");
        return 64;
    }
    pid_t pid = (pid_t)strtol(argv[1], NULL, 10);
    unsigned long long addr = strtoull(argv[2], NULL, 0);
    size_t len = (size_t)strtoull(argv[3], NULL, 0);

    if (writeOnly) memset(buf, 0xa5, sizeof buf);  // warm, and not the zero page
    double t0 = now();
    int fd = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "bench-c-dump: %s: %s\n", argv[4], strerror(errno));
        return 1;
    }
    size_t done = 0;
    while (done < len) {
        size_t want = len - done < CHUNK ? len - done : CHUNK;
        struct iovec local = {buf, want}, remote = {(void *)(addr + done), want};
        ssize_t n = writeOnly ? (ssize_t)want : process_vm_readv(pid, &local, 1, &remote, 1, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            fprintf(stderr, "bench-c-dump: process_vm_readv at 0x%llx: %s\n", addr + done,
                    n < 0 ? strerror(errno) : "moved nothing");
            return 2;
        }
        for (ssize_t w = 0; w < n;) {
            ssize_t k = write(fd, buf + w, (size_t)(n - w));
            if (k < 0 && errno == EINTR) continue;
            if (k < 0) {
                fprintf(stderr, "bench-c-dump: write: %s\n", strerror(errno));
                return 1;
            }
            w += k;
        }
        done += (size_t)n;
    }
    if (sync && fsync(fd) != 0) {
        fprintf(stderr, "bench-c-dump: fsync: %s\n", strerror(errno));
        return 1;
    }
    if (close(fd) != 0) {
        fprintf(stderr, "bench-c-dump: close: %s\n", strerror(errno));
        return 1;
    }
    if (sync) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", argv[4]);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0; else snprintf(dir, sizeof dir, ".");
        int dfd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) != 0) {
            fprintf(stderr, "bench-c-dump: fsync %s: %s\n", dir, strerror(errno));
            return 1;
        }
        close(dfd);
    }
    printf("seconds %.9f\n", now() - t0);
    return 0;
}
