// bench-c-scatter: the C baseline for many small reads across a process's maps.
// Reads /proc/PID/maps and hand-parses every field of every line (start, end,
// permissions, offset, device, inode, path; no sscanf), then reads the first
// 4 KiB (or the whole mapping, if smaller) of every readable mapping with
// process_vm_readv, up to IOV_MAX iovecs a call. A piece that faults is
// counted and skipped (the next call starts at the piece after it). Piece i
// lands in slot i % IOV_MAX of one reused, pre-faulted 4 MiB buffer.
// With --parse-only, only the maps are read and parsed.
// Prints `mappings N`, `split read S1 parse S2` (reading the file, parsing it),
// then (without --parse-only) `pieces P bytes B faults F`, then `seconds S`
// (all of it) and `cpu S` (its user + system time), once a repetition.
//
//   bench-c-scatter PID [--parse-only] [--reps N]
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif
#define PIECE 4096u

struct mapping {
    uint64_t start, end, offset, inode;
    uint32_t major, minor;
    char perms[4];
    uint32_t path_at, path_len;  // into the maps text
};

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

static char *text;
static size_t text_cap;
static struct mapping *maps;
static size_t maps_cap;

// Reads the whole file into `text` (proc files report size 0: read to EOF).
static ssize_t read_all(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t len = 0;
    for (;;) {
        if (text_cap - len < 4096) {
            text_cap = text_cap ? text_cap * 2 : 64 << 10;
            text = realloc(text, text_cap);
            if (!text) return -1;
        }
        ssize_t n = read(fd, text + len, text_cap - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { close(fd); return -1; }
        if (n == 0) break;
        len += (size_t)n;
    }
    close(fd);
    return (ssize_t)len;
}

static inline int hexdigit(unsigned char c) {
    if ((unsigned)(c - '0') < 10u) return c - '0';
    if ((unsigned)((c | 0x20) - 'a') < 6u) return (c | 0x20) - 'a' + 10;
    return -1;
}

static inline const char *hex(const char *p, const char *end, uint64_t *out) {
    uint64_t v = 0;
    const char *first = p;
    int d;
    while (p < end && (d = hexdigit((unsigned char)*p)) >= 0) { v = v << 4 | (uint64_t)d; p++; }
    *out = v;
    return p > first ? p : NULL;
}

static inline const char *expect(const char *p, const char *end, char c) {
    return p && p < end && *p == c ? p + 1 : NULL;
}

// Parses the maps text; returns the number of mappings, or -1 on bad text.
static long parse(size_t len) {
    const char *p = text, *end = text + len;
    size_t count = 0, line = 1;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        if (eol > p) {
            if (count == maps_cap) {
                maps_cap = maps_cap ? maps_cap * 2 : 4096;
                maps = realloc(maps, maps_cap * sizeof *maps);
                if (!maps) return -1;
            }
            struct mapping *m = &maps[count];
            uint64_t major, minor;
            const char *q = hex(p, eol, &m->start);
            q = expect(q, eol, '-');
            if (q) q = hex(q, eol, &m->end);
            q = expect(q, eol, ' ');
            if (!q || eol - q < 4) goto bad;
            memcpy(m->perms, q, 4);
            q = expect(q + 4, eol, ' ');
            if (q) q = hex(q, eol, &m->offset);
            q = expect(q, eol, ' ');
            if (q) q = hex(q, eol, &major);
            q = expect(q, eol, ':');
            if (q) q = hex(q, eol, &minor);
            q = expect(q, eol, ' ');
            if (!q || q == eol || (unsigned)(*q - '0') > 9) goto bad;
            uint64_t inode = 0;
            while (q < eol && (unsigned)(*q - '0') <= 9) inode = inode * 10 + (uint64_t)(*q++ - '0');
            while (q < eol && *q == ' ') q++;
            if (m->start > m->end) goto bad;
            m->major = (uint32_t)major;
            m->minor = (uint32_t)minor;
            m->inode = inode;
            m->path_at = (uint32_t)(q - text);
            m->path_len = (uint32_t)(eol - q);
            count++;
        }
        p = eol + 1;
        line++;
    }
    return (long)count;
bad:
    fprintf(stderr, "bench-c-scatter: bad maps line %zu\n", line);
    return -1;
}

static char slots[IOV_MAX * PIECE];

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench-c-scatter PID [--parse-only] [--reps N]\n");
        return 64;
    }
    pid_t pid = (pid_t)strtol(argv[1], NULL, 10);
    int parse_only = 0, reps = 1;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--parse-only") == 0) parse_only = 1;
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
        else return 64;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    memset(slots, 0, sizeof slots);  // pre-fault the destination

    static struct iovec local[IOV_MAX], remote[IOV_MAX];
    for (int r = 0; r < reps; r++) {
        double t0 = now(), c0 = cpu();
        ssize_t len = read_all(path);
        if (len < 0) {
            fprintf(stderr, "bench-c-scatter: %s: %s\n", path, strerror(errno));
            return 1;
        }
        double t_read = now();
        long count = parse((size_t)len);
        if (count < 0) return 1;
        double t_parse = now();
        size_t pieces = 0, bytes = 0, faults = 0;
        if (!parse_only) {
            long next = 0;  // first mapping not yet handed to a call
            while (next < count) {
                // Gather up to IOV_MAX readable mappings, starting at `next`.
                int k = 0;
                long idx[IOV_MAX];
                long i = next;
                for (; i < count && k < IOV_MAX; i++) {
                    const struct mapping *m = &maps[i];
                    if (m->perms[0] != 'r') continue;
                    size_t want = m->end - m->start < PIECE ? (size_t)(m->end - m->start) : PIECE;
                    local[k].iov_base = slots + (size_t)(pieces + (size_t)k) % IOV_MAX * PIECE;
                    local[k].iov_len = want;
                    remote[k].iov_base = (void *)m->start;
                    remote[k].iov_len = want;
                    idx[k++] = i;
                }
                if (k == 0) break;
                ssize_t n = process_vm_readv(pid, local, (unsigned long)k, remote, (unsigned long)k, 0);
                if (n < 0 && errno == EINTR) continue;
                if (n < 0 && errno != EFAULT) {
                    fprintf(stderr, "bench-c-scatter: process_vm_readv: %s\n", strerror(errno));
                    return 2;
                }
                // Credit whole pieces; the first short one faulted: skip it.
                size_t moved = n < 0 ? 0 : (size_t)n;
                int j = 0;
                while (j < k && moved >= local[j].iov_len) {
                    moved -= local[j].iov_len;
                    bytes += local[j].iov_len;
                    j++;
                }
                pieces += (size_t)j;
                if (j == k) { next = i; continue; }
                bytes += moved;
                pieces++;
                faults++;
                next = idx[j] + 1;
            }
        }
        double t = now() - t0;
        printf("mappings %ld\n", count);
        printf("split read %.9f parse %.9f\n", t_read - t0, t_parse - t_read);
        if (!parse_only) printf("pieces %zu bytes %zu faults %zu\n", pieces, bytes, faults);
        printf("seconds %.9f\n", t);
        printf("cpu %.9f\n", cpu() - c0);
    }
    return 0;
}
