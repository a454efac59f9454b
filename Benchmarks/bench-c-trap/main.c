// bench-c-trap: the baseline of scripts/bench-traps: the smallest C tracer that logs a
// watchpoint or a breakpoint the way `vmio-ptrace watch` / `break` do, on a single-threaded
// loop (vmio-fixture-traps `loop N`).
//
//   bench-c-trap watch PID ADDR N    DR0 = ADDR (8 bytes, writes); each hit: GETREGS, the
//                                    value read through /proc/PID/mem, DR6 cleared, a line
//                                    written, PTRACE_CONT
//   bench-c-trap break PID ADDR N    int3 at ADDR; each hit: GETREGS, rip moved back, the
//                                    original byte put back, one single step, int3 again,
//                                    a line written, PTRACE_CONT
//
// After N hits it puts everything back, detaches and exits. Says `armed` on stderr once set.
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

static void fail(const char *what) {
    perror(what);
    exit(1);
}

static unsigned long dr(int n) { return offsetof(struct user, u_debugreg) + 8 * n; }

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: bench-c-trap watch|break PID ADDR N\n");
        return 64;
    }
    int watch = strcmp(argv[1], "watch") == 0;
    pid_t pid = atoi(argv[2]);
    unsigned long address = strtoul(argv[3], 0, 0);
    long n = atol(argv[4]);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", pid);
    int mem = open(path, O_RDWR);
    if (mem < 0) fail("open mem");
    int status;
    if (ptrace(PTRACE_SEIZE, pid, 0, 0) || ptrace(PTRACE_INTERRUPT, pid, 0, 0)) fail("seize");
    if (waitpid(pid, &status, __WALL) < 0) fail("waitpid");
    unsigned char original = 0, int3 = 0xcc;
    if (watch) {
        if (ptrace(PTRACE_POKEUSER, pid, dr(0), address)) fail("DR0");
        if (ptrace(PTRACE_POKEUSER, pid, dr(7), 1 | 1 << 16 | 2 << 18)) fail("DR7");
    } else {
        if (pread(mem, &original, 1, address) != 1 || pwrite(mem, &int3, 1, address) != 1) fail("int3");
    }
    fprintf(stderr, "armed\n");
    if (ptrace(PTRACE_CONT, pid, 0, 0)) fail("cont");
    char line[256];
    for (long hits = 0; hits < n;) {
        if (waitpid(pid, &status, __WALL) < 0) fail("waitpid");
        if (!WIFSTOPPED(status)) return 1;
        int signal = WSTOPSIG(status);
        if (signal != SIGTRAP || status >> 16) {
            ptrace(PTRACE_CONT, pid, 0, (void *)(long)(status >> 16 ? 0 : signal));
            continue;
        }
        struct user_regs_struct regs;
        ptrace(PTRACE_GETREGS, pid, 0, &regs);
        int length;
        if (watch) {
            long value = 0;
            pread(mem, &value, sizeof value, address);
            ptrace(PTRACE_POKEUSER, pid, dr(6), 0);
            length = snprintf(line, sizeof line, "tid %d pc 0x%llx value %ld\n", pid, regs.rip, value);
        } else {
            regs.rip -= 1;
            ptrace(PTRACE_SETREGS, pid, 0, &regs);
            pwrite(mem, &original, 1, address);
            ptrace(PTRACE_SINGLESTEP, pid, 0, 0);
            waitpid(pid, &status, __WALL);
            pwrite(mem, &int3, 1, address);
            length = snprintf(line, sizeof line, "tid %d pc 0x%llx rdi 0x%llx rsi 0x%llx\n", pid, regs.rip, regs.rdi,
                              regs.rsi);
        }
        fwrite(line, 1, length, stdout);
        hits++;
        if (hits < n) ptrace(PTRACE_CONT, pid, 0, 0);
    }
    fflush(stdout);
    if (watch) {
        ptrace(PTRACE_POKEUSER, pid, dr(7), 0);
    } else {
        pwrite(mem, &original, 1, address);
    }
    ptrace(PTRACE_DETACH, pid, 0, 0);
    return 0;
}
