#define _GNU_SOURCE
#include "CVmio.h"
#include <errno.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <stddef.h>
#include <time.h>
#include <unistd.h>

ssize_t vmio_process_vm_readv(pid_t pid, const struct iovec *local, unsigned long local_count,
                              const struct iovec *remote, unsigned long remote_count) {
    return process_vm_readv(pid, local, local_count, remote, remote_count, 0);
}

ssize_t vmio_process_vm_writev(pid_t pid, const struct iovec *local, unsigned long local_count,
                               const struct iovec *remote, unsigned long remote_count) {
    return process_vm_writev(pid, local, local_count, remote, remote_count, 0);
}

long vmio_ptrace_seize(pid_t tid, unsigned long options) {
    return ptrace(PTRACE_SEIZE, tid, 0, (void *)options);
}
long vmio_ptrace_interrupt(pid_t tid) { return ptrace(PTRACE_INTERRUPT, tid, 0, 0); }
long vmio_ptrace_detach(pid_t tid, int signal) { return ptrace(PTRACE_DETACH, tid, 0, (void *)(long)signal); }
long vmio_ptrace_cont(pid_t tid, int signal) { return ptrace(PTRACE_CONT, tid, 0, (void *)(long)signal); }
long vmio_ptrace_listen(pid_t tid) { return ptrace(PTRACE_LISTEN, tid, 0, 0); }
long vmio_ptrace_setoptions(pid_t tid, unsigned long options) {
    return ptrace(PTRACE_SETOPTIONS, tid, 0, (void *)options);
}
long vmio_ptrace_geteventmsg(pid_t tid, unsigned long *message) { return ptrace(PTRACE_GETEVENTMSG, tid, 0, message); }
long vmio_ptrace_singlestep(pid_t tid, int signal) {
    return ptrace(PTRACE_SINGLESTEP, tid, 0, (void *)(long)signal);
}
long vmio_ptrace_peekuser(pid_t tid, unsigned long offset, uint64_t *word) {
    errno = 0;
    long value = ptrace(PTRACE_PEEKUSER, tid, (void *)offset, 0);
    if (value == -1 && errno != 0) return -1;
    *word = (uint64_t)value;
    return 0;
}
long vmio_ptrace_pokeuser(pid_t tid, unsigned long offset, uint64_t word) {
    return ptrace(PTRACE_POKEUSER, tid, (void *)offset, (void *)word);
}
unsigned long vmio_user_debugreg_offset(void) { return offsetof(struct user, u_debugreg); }
unsigned long vmio_user_rip_offset(void) { return offsetof(struct user, regs.rip); }
unsigned long vmio_user_rsp_offset(void) { return offsetof(struct user, regs.rsp); }
long vmio_ptrace_traceme(void) { return ptrace(PTRACE_TRACEME, 0, 0, 0); }

long vmio_ptrace_peekdata(pid_t tid, uint64_t address, uint64_t *word) {
    errno = 0;
    long value = ptrace(PTRACE_PEEKDATA, tid, (void *)address, 0);
    if (value == -1 && errno != 0) return -1;
    *word = (uint64_t)value;
    return 0;
}

long vmio_ptrace_getregs(pid_t tid, struct user_regs_struct *regs) {
    return ptrace(PTRACE_GETREGS, tid, 0, regs);
}

long vmio_ptrace_getregset(pid_t tid, unsigned int type, void *buffer, size_t *length) {
    struct iovec vector = {.iov_base = buffer, .iov_len = *length};
    long result = ptrace(PTRACE_GETREGSET, tid, (void *)(unsigned long)type, &vector);
    if (result == 0) *length = vector.iov_len;
    return result;
}

long vmio_ptrace_getsiginfo(pid_t tid, void *info) { return ptrace(PTRACE_GETSIGINFO, tid, 0, info); }

long vmio_ptrace_signal_code(pid_t tid, int *code) {
    siginfo_t info;
    long result = ptrace(PTRACE_GETSIGINFO, tid, 0, &info);
    if (result == 0) *code = info.si_code;
    return result;
}

int vmio_start_writeback(int fd, long long offset, long long length) {
    return sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE);
}

int vmio_populate_file(int fd, long long offset, long long length) {
    void *pages = mmap(NULL, (size_t)length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);
    if (pages == MAP_FAILED) return -1;
    int result = madvise(pages, (size_t)length, 23 /* MADV_POPULATE_WRITE, Linux 5.14 */);
    int saved = errno;
    munmap(pages, (size_t)length);
    errno = saved;
    return result;
}

long long vmio_file_system_type(int fd) {
    struct statfs info;
    return fstatfs(fd, &info) == 0 ? (long long)info.f_type : -1;
}

int vmio_trap_hardware_code(void) { return TRAP_HWBKPT; }

int vmio_trap_trace_code(void) { return TRAP_TRACE; }

int vmio_errno(void) { return errno; }

// PIDFD_THREAD of linux/pidfd.h (Linux 6.9): a pidfd of one thread, not of a process.
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

int vmio_pidfd_open(pid_t pid) {
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    // `pid` is a thread other than the main one (the tool reaches a process whose main thread
    // has exited through such a thread): refused with ENOENT (EINVAL before Linux 6.9); its
    // own pidfd ends when it does.
    if (fd < 0 && (errno == ENOENT || errno == EINVAL)) fd = (int)syscall(SYS_pidfd_open, pid, PIDFD_THREAD);
    return fd;
}

const void *vmio_memmem(const void *haystack, size_t haystack_length, const void *needle, size_t needle_length) {
    return memmem(haystack, haystack_length, needle, needle_length);
}

// A fixed table: slots hold a tid or 0. Plain atomics so the handler never sees a torn value.
#define VMIO_TRACKED_MAX 8192
static volatile pid_t tracked[VMIO_TRACKED_MAX];

void vmio_tracked_add(pid_t tid) {
    for (int i = 0; i < VMIO_TRACKED_MAX; i++) {
        pid_t expected = 0;
        if (__atomic_compare_exchange_n(&tracked[i], &expected, tid, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            return;
    }
}

void vmio_tracked_remove(pid_t tid) {
    for (int i = 0; i < VMIO_TRACKED_MAX; i++) {
        pid_t expected = tid;
        if (__atomic_compare_exchange_n(&tracked[i], &expected, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            return;
    }
}

// The dump being written: its directory, and 0 (none), 1 (armed) or 2 (armed, and the
// directory is the dump's own). The path is written before the state is set.
static char dump_directory[4096];
static volatile int dump_state;

void vmio_dump_cleanup_arm(const char *directory, int created) {
    __atomic_store_n(&dump_state, 0, __ATOMIC_SEQ_CST);
    size_t length = strlen(directory);
    if (length >= sizeof dump_directory) return;
    memcpy(dump_directory, directory, length + 1);
    __atomic_store_n(&dump_state, created ? 2 : 1, __ATOMIC_SEQ_CST);
}

void vmio_dump_cleanup_disarm(void) { __atomic_store_n(&dump_state, 0, __ATOMIC_SEQ_CST); }

static int is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

int vmio_is_dump_file_name(const char *name) {
    if (strcmp(name, ".manifest.json.part") == 0) return 1;
    const char *p = name;
    int hidden = *p == '.';
    if (hidden) p++;
    // NNNN: four or more decimal digits, then -START-END in hex.
    int digits = 0;
    while (*p >= '0' && *p <= '9') p++, digits++;
    if (digits < 4 || *p++ != '-') return 0;
    for (int part = 0; part < 2; part++) {
        int hexDigits = 0;
        while (is_hex(*p)) p++, hexDigits++;
        if (hexDigits == 0) return 0;
        if (part == 0 && *p++ != '-') return 0;
    }
    return strcmp(p, hidden ? ".bin.part" : ".bin") == 0;
}

// In the handler: removes the armed dump's files unless its manifest is in place.
static void remove_dump(void) {
    int state = __atomic_exchange_n(&dump_state, 0, __ATOMIC_SEQ_CST);
    if (state == 0) return;
    int dir = open(dump_directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir < 0) return;
    if (faccessat(dir, "manifest.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
        close(dir);
        return;
    }
    char buffer[8192] __attribute__((aligned(8)));
    // Entries removed while the directory is read may move the others: read it again from
    // the start until a pass removes nothing (a few passes at most).
    for (int pass = 0, removed = 1; removed && pass < 16; pass++) {
        removed = 0;
        lseek(dir, 0, SEEK_SET);
        for (;;) {
            long n = syscall(SYS_getdents64, dir, buffer, sizeof buffer);
            if (n <= 0) break;
            for (long offset = 0; offset < n;) {
                struct dirent64 *entry = (struct dirent64 *)(buffer + offset);
                if (vmio_is_dump_file_name(entry->d_name) && unlinkat(dir, entry->d_name, 0) == 0) removed = 1;
                offset += entry->d_reclen;
            }
        }
    }
    close(dir);
    if (state == 2) rmdir(dump_directory);
}

// Temporary output files: a slot is free (0), being written (1), or armed (2). The path is
// written before the state turns 2; the handler only reads armed slots.
#define VMIO_OUTPUT_SLOTS 8
static char output_paths[VMIO_OUTPUT_SLOTS][4096];
static volatile int output_state[VMIO_OUTPUT_SLOTS];

int vmio_output_cleanup_arm(const char *path) {
    size_t length = strlen(path);
    if (length >= sizeof output_paths[0]) return -1;
    for (int i = 0; i < VMIO_OUTPUT_SLOTS; i++) {
        int expected = 0;
        if (!__atomic_compare_exchange_n(&output_state[i], &expected, 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            continue;
        memcpy(output_paths[i], path, length + 1);
        __atomic_store_n(&output_state[i], 2, __ATOMIC_SEQ_CST);
        return i;
    }
    return -1;
}

void vmio_output_cleanup_disarm(int slot) {
    if (slot >= 0 && slot < VMIO_OUTPUT_SLOTS) __atomic_store_n(&output_state[slot], 0, __ATOMIC_SEQ_CST);
}

// In the handler: unlink(2) is async-signal-safe.
static void remove_outputs(void) {
    for (int i = 0; i < VMIO_OUTPUT_SLOTS; i++) {
        int expected = 2;
        if (__atomic_compare_exchange_n(&output_state[i], &expected, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            unlink(output_paths[i]);
    }
}

static volatile int defer_fatal;
static volatile int deferred_signal;

void vmio_defer_fatal_signals(int on) { __atomic_store_n(&defer_fatal, on, __ATOMIC_SEQ_CST); }
int vmio_take_deferred_signal(void) { return __atomic_exchange_n(&deferred_signal, 0, __ATOMIC_SEQ_CST); }
int vmio_deferred_signal(void) { return __atomic_load_n(&deferred_signal, __ATOMIC_SEQ_CST); }

ssize_t vmio_stdin_getline(char **line, size_t *capacity) {
    errno = 0;
    ssize_t count = getline(line, capacity, stdin);
    if (count < 0 && errno == EINTR) {
        clearerr(stdin);
        errno = EINTR;
    }
    return count;
}

void vmio_reraise(int sig) {
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, 0);
    raise(sig);
}

static void tick(int sig) { (void)sig; }
static timer_t tick_timer;
static int tick_armed;

int vmio_tick_start(int milliseconds) {
    int sig = SIGRTMIN + 4;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = tick;  // no SA_RESTART: a blocking call returns EINTR
    sigemptyset(&action.sa_mask);
    if (sigaction(sig, &action, 0) != 0) return -1;
    struct sigevent event;
    memset(&event, 0, sizeof event);
    event.sigev_notify = SIGEV_THREAD_ID;
    event.sigev_signo = sig;
    event._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    if (timer_create(CLOCK_MONOTONIC, &event, &tick_timer) != 0) return -1;
    struct itimerspec period = {
        .it_interval = {milliseconds / 1000, (milliseconds % 1000) * 1000000L},
        .it_value = {milliseconds / 1000, (milliseconds % 1000) * 1000000L},
    };
    if (timer_settime(tick_timer, 0, &period, 0) != 0) {
        timer_delete(tick_timer);
        return -1;
    }
    tick_armed = 1;
    return 0;
}

void vmio_tick_stop(void) {
    // The ticks leave errno at EINTR (an interrupted waitid): a later getline(3) at end of file
    // fails without setting errno, and Swift's readLine retries an EINTR for ever (a session
    // reading standard input spun at full CPU after a wait).
    errno = 0;
    if (!tick_armed) return;
    tick_armed = 0;
    timer_delete(tick_timer);
    errno = 0;
}

pid_t vmio_wait_peek(int hang) {
    siginfo_t info;
    memset(&info, 0, sizeof info);  // WNOHANG with no news leaves si_pid 0
    int options = WEXITED | WSTOPPED | WNOWAIT | __WALL | __WNOTHREAD | (hang ? 0 : WNOHANG);
    if (waitid(P_ALL, 0, &info, options) < 0) return -1;
    return info.si_pid;
}

int vmio_rename_exchange(const char *a, const char *b) {
    return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, 1 << 1 /* RENAME_EXCHANGE */);
}

static volatile pid_t owned_child;

void vmio_set_owned_child(pid_t pid) { __atomic_store_n(&owned_child, pid, __ATOMIC_SEQ_CST); }

static void detach_all_and_reraise(int sig) {
    if (__atomic_load_n(&defer_fatal, __ATOMIC_SEQ_CST)) {
        __atomic_store_n(&deferred_signal, sig, __ATOMIC_SEQ_CST);
        return;
    }
    int saved = errno;
    pid_t child = __atomic_exchange_n(&owned_child, 0, __ATOMIC_SEQ_CST);
    if (child > 0) kill(child, SIGKILL);
    for (int i = 0; i < VMIO_TRACKED_MAX; i++) {
        pid_t tid = __atomic_exchange_n(&tracked[i], 0, __ATOMIC_SEQ_CST);
        if (tid > 0) ptrace(PTRACE_DETACH, tid, 0, 0);
    }
    remove_dump();
    remove_outputs();
    errno = saved;
    signal(sig, SIG_DFL);
    raise(sig);
}

void vmio_install_detach_handlers(void) {
    static const int signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE};
    // A parent may start us with these blocked (any libdispatch worker thread blocks them),
    // and then no handler would ever run: unblock them. Ignored ones (nohup) stay ignored.
    sigset_t unblock;
    sigemptyset(&unblock);
    for (unsigned i = 0; i < sizeof signals / sizeof signals[0]; i++) sigaddset(&unblock, signals[i]);
    sigprocmask(SIG_UNBLOCK, &unblock, 0);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = detach_all_and_reraise;
    sigemptyset(&action.sa_mask);
    sigaddset(&action.sa_mask, SIGINT);
    sigaddset(&action.sa_mask, SIGTERM);
    sigaddset(&action.sa_mask, SIGHUP);
    sigaddset(&action.sa_mask, SIGQUIT);
    sigaddset(&action.sa_mask, SIGPIPE);
    // SIGPIPE too: output piped into a reader that quits (| head) must not leave a target stopped.
    for (unsigned i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        struct sigaction old;
        if (sigaction(signals[i], 0, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        sigaction(signals[i], &action, 0);
    }
}

pid_t vmio_spawn_traced(const char *file, char *const argv[], int null_stdin) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return -1;
    pid_t child = fork();
    if (child < 0) {
        int saved = errno;
        close(report[0]);
        close(report[1]);
        errno = saved;
        return -1;
    }
    if (child == 0) {
        close(report[0]);
        if (null_stdin) {
            int fd = open("/dev/null", O_RDONLY);
            if (fd >= 0) { dup2(fd, 0); close(fd); }
        }
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        execvp(file, argv);
        int err = errno;
        (void)!write(report[1], &err, sizeof err);
        _exit(127);
    }
    close(report[1]);
    int err = 0;
    ssize_t got;
    do { got = read(report[0], &err, sizeof err); } while (got < 0 && errno == EINTR);
    close(report[0]);
    if (got == (ssize_t)sizeof err) {
        waitpid(child, 0, 0);
        errno = err;
        return -1;
    }
    return child;
}
