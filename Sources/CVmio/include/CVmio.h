// Thin C shim for what Swift cannot reach directly: the variadic ptrace(),
// process_vm_readv/writev (declared only under _GNU_SOURCE), and a detach that is
// safe to run inside a signal handler. No logic beyond that.
#ifndef CVMIO_H
#define CVMIO_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/ptrace.h>

/// PTRACE_EVENT_STOP: the event of a stop PTRACE_INTERRUPT (or a group stop) causes, as
/// waitpid reports it in `status >> 16` (an enum constant in <sys/ptrace.h>, which Swift
/// does not import).
static const int vmio_ptrace_event_stop = PTRACE_EVENT_STOP;

/// The ptrace options and events of the event loop (Traps/, ARCHITECTURE.md), and where the
/// debug registers and rip lie in `struct user` for PTRACE_PEEKUSER / PTRACE_POKEUSER.
static const int vmio_ptrace_o_traceclone = PTRACE_O_TRACECLONE;
static const int vmio_ptrace_o_tracefork = PTRACE_O_TRACEFORK;
static const int vmio_ptrace_o_tracevfork = PTRACE_O_TRACEVFORK;
static const int vmio_ptrace_o_traceexec = PTRACE_O_TRACEEXEC;
static const int vmio_ptrace_o_tracevforkdone = PTRACE_O_TRACEVFORKDONE;
static const int vmio_ptrace_event_clone = PTRACE_EVENT_CLONE;
static const int vmio_ptrace_event_fork = PTRACE_EVENT_FORK;
static const int vmio_ptrace_event_vfork = PTRACE_EVENT_VFORK;
static const int vmio_ptrace_event_exec = PTRACE_EVENT_EXEC;
static const int vmio_ptrace_event_vfork_done = PTRACE_EVENT_VFORK_DONE;
/// offsetof(struct user, u_debugreg): DRn is at this offset + 8 n.
unsigned long vmio_user_debugreg_offset(void);
/// offsetof(struct user, regs.rip).
unsigned long vmio_user_rip_offset(void);
unsigned long vmio_user_rsp_offset(void);

/// process_vm_readv(2)
ssize_t vmio_process_vm_readv(pid_t pid, const struct iovec *local, unsigned long local_count,
                              const struct iovec *remote, unsigned long remote_count);
/// process_vm_writev(2)
ssize_t vmio_process_vm_writev(pid_t pid, const struct iovec *local, unsigned long local_count,
                               const struct iovec *remote, unsigned long remote_count);

/// ptrace(PTRACE_SEIZE, tid, 0, options)
long vmio_ptrace_seize(pid_t tid, unsigned long options);
/// ptrace(PTRACE_INTERRUPT, tid, 0, 0)
long vmio_ptrace_interrupt(pid_t tid);
/// ptrace(PTRACE_DETACH, tid, 0, signal)
long vmio_ptrace_detach(pid_t tid, int signal);
/// ptrace(PTRACE_CONT, tid, 0, signal)
long vmio_ptrace_cont(pid_t tid, int signal);
/// ptrace(PTRACE_LISTEN, tid, 0, 0)
long vmio_ptrace_listen(pid_t tid);
/// ptrace(PTRACE_PEEKDATA, tid, address, 0): the word goes to *word; returns 0 or -1 with errno set.
long vmio_ptrace_peekdata(pid_t tid, uint64_t address, uint64_t *word);
/// ptrace(PTRACE_GETREGS, tid, 0, regs)
long vmio_ptrace_getregs(pid_t tid, struct user_regs_struct *regs);
/// ptrace(PTRACE_GETREGSET, tid, type, &{buffer, *length}): one register set of a stopped thread in
/// the layout of the thread's own ABI; *length becomes the size the kernel filled.
long vmio_ptrace_getregset(pid_t tid, unsigned int type, void *buffer, size_t *length);
/// ptrace(PTRACE_GETSIGINFO, tid, 0, info): the siginfo of the signal a thread stopped on
/// (128 bytes, the tracer's own layout).
long vmio_ptrace_getsiginfo(pid_t tid, void *info);
/// ptrace(PTRACE_GETSIGINFO, tid, 0, &info), only info.si_code stored in *code: how the
/// signal a thread stopped on was raised (no 128-byte copy for the caller to keep).
long vmio_ptrace_signal_code(pid_t tid, int *code);
/// sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE): starts writing back the
/// dirty pages of that range, not waiting for them (_GNU_SOURCE).
int vmio_start_writeback(int fd, long long offset, long long length);
/// mmap(2) of [offset, offset + length) of fd, shared, madvise(2) with MADV_POPULATE_WRITE,
/// munmap(2): the file's pages there exist afterwards (allocated outside the inode lock a
/// write(2) holds). offset page-aligned, the range inside the file's size; -1 with errno.
int vmio_populate_file(int fd, long long offset, long long length);
/// fstatfs(2)'s f_type of fd's file system (TMPFS_MAGIC for a tmpfs), -1 with errno.
long long vmio_file_system_type(int fd);
/// TRAP_HWBKPT: the si_code of a SIGTRAP raised by a debug register's hit.
int vmio_trap_hardware_code(void);
/// TRAP_TRACE: the si_code of a SIGTRAP raised by a finished single step.
int vmio_trap_trace_code(void);
/// ptrace(PTRACE_SETOPTIONS, tid, 0, options)
long vmio_ptrace_setoptions(pid_t tid, unsigned long options);
/// ptrace(PTRACE_GETEVENTMSG, tid, 0, message)
long vmio_ptrace_geteventmsg(pid_t tid, unsigned long *message);
/// ptrace(PTRACE_SINGLESTEP, tid, 0, signal)
long vmio_ptrace_singlestep(pid_t tid, int signal);
/// ptrace(PTRACE_PEEKUSER, tid, offset, 0): the word goes to *word; returns 0 or -1 with errno set.
long vmio_ptrace_peekuser(pid_t tid, unsigned long offset, uint64_t *word);
/// ptrace(PTRACE_POKEUSER, tid, offset, word)
long vmio_ptrace_pokeuser(pid_t tid, unsigned long offset, uint64_t word);
/// ptrace(PTRACE_TRACEME, 0, 0, 0)
long vmio_ptrace_traceme(void);

/// memmem(3) (a GNU extension, hidden from Swift without _GNU_SOURCE).
const void *vmio_memmem(const void *haystack, size_t haystack_length, const void *needle, size_t needle_length);

/// fork(2), then PTRACE_TRACEME and execvp(3) in the child, which therefore stops with
/// SIGTRAP at its first instruction. The child's stdin is /dev/null when `null_stdin`.
/// Returns the child's pid, or -1 with errno set (the child's errno when exec failed).
pid_t vmio_spawn_traced(const char *file, char *const argv[], int null_stdin);

/// pidfd_open(2): a descriptor that polls readable when the process exits; for a thread
/// other than the main one, when that thread exits (PIDFD_THREAD, Linux 6.9).
int vmio_pidfd_open(pid_t pid);

/// The errno of the calling thread.
int vmio_errno(void);

/// Threads currently stopped by this tool, kept where a signal handler can reach them.
/// Add after a thread is seized; remove after it is detached.
void vmio_tracked_add(pid_t tid);
void vmio_tracked_remove(pid_t tid);
/// Temporary output files (an OutputFile's `.NAME.PID.part`) the handlers below remove. Arm
/// returns the slot (-1 when every slot is taken or the path is too long); disarm frees it.
int vmio_output_cleanup_arm(const char *path);
void vmio_output_cleanup_disarm(int slot);
/// renameat2(2) with RENAME_EXCHANGE: swaps two paths at once; -1 with errno (EINVAL where
/// the file system cannot).
int vmio_rename_exchange(const char *a, const char *b);
/// A process this tool started and kills at its end (`run`): the handlers below kill it
/// (SIGKILL, async-signal-safe) before detaching. 0 for none.
void vmio_set_owned_child(pid_t pid);
/// Installs handlers for SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGPIPE that detach every tracked thread
/// (PTRACE_DETACH is async-signal-safe), then re-raise the signal with its default action,
/// so the tool dies of it as usual and no target is left stopped.
void vmio_install_detach_handlers(void);

/// While an event loop runs (Traps/): the handlers above only record a fatal signal (SIGINT,
/// SIGTERM, SIGHUP, SIGQUIT, SIGPIPE) and return, so the loop can put back what it wrote into
/// the target before anything is let go; then it re-raises the signal (vmio_reraise).
void vmio_defer_fatal_signals(int on);
/// The fatal signal recorded while deferred, or 0; taken (reset to 0).
int vmio_take_deferred_signal(void);
/// The fatal signal recorded while deferred, or 0; left for vmio_take_deferred_signal.
int vmio_deferred_signal(void);
/// getline(3) on stdin (which Swift 6 cannot name: shared mutable state), errno cleared first
/// (at the end of input getline leaves it as it was); after an EINTR the stream's error flag
/// is cleared (clearerr), so the next call reads on.
ssize_t vmio_stdin_getline(char **line, size_t *capacity);
/// The signal at its default action, raised again (the process dies of it as usual).
void vmio_reraise(int signal);
/// A timer that interrupts the calling thread's blocking calls (EINTR) every `milliseconds`
/// (timer_create with SIGEV_THREAD_ID, a real-time signal whose handler does nothing, no
/// SA_RESTART), so a loop blocked in waitpid sees its deadline and a deferred signal. 0 or -1.
int vmio_tick_start(int milliseconds);
/// Deletes the calling thread's timer.
void vmio_tick_stop(void);
/// waitid(P_ALL, …, WEXITED | WSTOPPED | WNOWAIT | __WALL | __WNOTHREAD) once (with WNOHANG
/// when hang is 0): which of the calling thread's tracees and children has news, left
/// uncollected (waitpid(pid) collects it). 0 when hang is 0 and none has news yet; -1 with
/// errno EINTR when a signal interrupted it, ECHILD when there is none.
pid_t vmio_wait_peek(int hang);

/// A dump being written into `directory`, kept where the handlers above can reach it: on
/// SIGINT, SIGTERM, SIGHUP, SIGQUIT or SIGPIPE they remove its files (the names a dump writes:
/// `NNNN-START-END.bin`, `.NNNN-START-END.bin.part`, `.manifest.json.part`; never anything
/// else) unless its manifest is in place, and the directory when `created` (this dump made
/// it). Async-signal-safe in the handler: open, getdents64, unlinkat, rmdir.
void vmio_dump_cleanup_arm(const char *directory, int created);
/// The dump is finished or cleaned up otherwise: the handlers leave it alone.
void vmio_dump_cleanup_disarm(void);
/// Whether `name` is one a dump writes (a region's data file, its `.part`, the manifest's `.part`).
int vmio_is_dump_file_name(const char *name);

#endif
