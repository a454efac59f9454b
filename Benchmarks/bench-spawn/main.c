// bench-spawn: runs a command and reports its wall-clock time and peak memory.
// vmio-bench starts every measured command through this small program, because
// Linux carries the spawning process's RSS high-water mark over fork/vfork + exec
// into the child's ru_maxrss: spawned straight from vmio-bench (tens of MiB after
// its own reads), every child would report at least vmio-bench's own peak.
// From here the floor is this program's ~1 MiB.
//
//   bench-spawn CMD [ARGS...]
// CMD is looked up on PATH and inherits stdin, stdout and stderr. When it ends,
// one line goes to stderr:
//   bench-spawn: status N seconds S maxrss_kib K cpu C
// (N: exit status, or 128 + signal; S: spawn to reap; K: the child's ru_maxrss; C: the
// child's user + system time, which load from other processes moves far less than S).
// Exits 0 when the command ran, whatever its status; 127 when it could not start.
#define _GNU_SOURCE
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench-spawn CMD [ARGS...]\n");
        return 64;
    }
    pid_t pid;
    double t0 = now();
    int rc = posix_spawnp(&pid, argv[1], NULL, NULL, argv + 1, environ);
    if (rc != 0) {
        fprintf(stderr, "bench-spawn: %s: %s\n", argv[1], strerror(rc));
        return 127;
    }
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("bench-spawn: wait4");
            return 127;
        }
    }
    double elapsed = now() - t0;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
    fprintf(stderr, "bench-spawn: status %d seconds %.9f maxrss_kib %ld cpu %.6f\n", code, elapsed, ru.ru_maxrss,
            cpu);
    return 0;
}
