// Thin C shim over elfutils' libdwfl unwinder (its callbacks are C function pointers
// and structs Swift cannot fill in comfortably), the C++ runtime's demangler, and the
// libelf headers the symbol tables are read with. The memory reader behind the unwinder,
// and its page cache, live in Swift; the shim keeps no state beyond one Dwfl session.
#ifndef CUNWIND_H
#define CUNWIND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <gelf.h>
#include <libelf.h>

/// Reads the 8 bytes at `address` of the target into *word. Returns 0, or -1 when the
/// memory cannot be read. `context` is the pointer given to vmio_unwinder_create.
typedef int (*vmio_read_word)(void *context, uint64_t address, uint64_t *word);

/// How a frame was found from the frame below it (its callee).
enum vmio_frame_source {
    /// Frame 0: the thread's registers (PTRACE_GETREGS).
    VMIO_FRAME_REGISTERS = 0,
    /// The call frame information of the callee's module, from its .eh_frame.
    VMIO_FRAME_EH_FRAME = 1,
    /// The call frame information of the callee's module, from its .debug_frame (in the
    /// file or in its separate debug file).
    VMIO_FRAME_DEBUG_FRAME = 2,
    /// No CFI for the callee's pc: the caller was taken from the rbp frame-pointer chain
    /// (the return address at rbp+8, the caller's rbp at rbp), which is only right when the
    /// callee keeps a frame pointer.
    VMIO_FRAME_POINTER = 3,
};

/// One frame as the unwinder reports it.
typedef struct {
    /// The instruction pointer: where the thread is (frame 0), else the return address.
    uint64_t pc;
    /// The stack pointer of the frame (valid when has_sp).
    uint64_t sp;
    int has_sp;
    /// pc is where the code was interrupted (frame 0, or the frame a signal interrupted),
    /// not a return address: look it up as it is, not at pc - 1.
    int is_activation;
    /// The frame is a signal trampoline: the CFI covering its pc is marked as a signal
    /// frame ('S' augmentation), so the frame above it is the interrupted code.
    int is_signal_frame;
    /// A vmio_frame_source: how this frame was found.
    int source;
    /// How its caller is sought: VMIO_FRAME_EH_FRAME, VMIO_FRAME_DEBUG_FRAME, or
    /// VMIO_FRAME_POINTER when no CFI covers the frame's pc.
    int caller_source;
} vmio_frame;

/// Called for each frame, innermost first. Returns 0 to go on, anything else to stop.
typedef int (*vmio_frame_callback)(void *context, const vmio_frame *frame);

/// One process's unwinder: a libdwfl session (dwfl_begin) whose modules are reported by
/// the caller, with thread callbacks that read registers with PTRACE_GETREGS and memory
/// through `read` (or, with `read` NULL, PTRACE_PEEKDATA a word on the thread being
/// unwound). The ELF files, their CFI and their symbol tables are opened once, when first
/// needed, and kept for every thread unwound with the session.
typedef struct vmio_unwinder vmio_unwinder;

/// dwfl_begin for `pid`; NULL when out of memory.
vmio_unwinder *vmio_unwinder_create(pid_t pid, vmio_read_word read, void *context);
/// dwfl_end, and frees the session.
void vmio_unwinder_destroy(vmio_unwinder *unwinder);

/// Starts (again) the list of modules: dwfl_report_begin. Modules reported again with the
/// same name and range keep what was loaded for them.
void vmio_unwinder_report_begin(vmio_unwinder *unwinder);
/// dwfl_report_module: `name` is a file the ELF image can be opened from (a regular file),
/// or `[vdso: PID]` for an image read from the target's memory; [start, end) its range.
/// 0, or -1 (vmio_unwinder_error says why).
int vmio_unwinder_report(vmio_unwinder *unwinder, const char *name, uint64_t start, uint64_t end);
/// dwfl_report_end, then (the first time) dwfl_attach_state with the session's thread
/// callbacks. 0, or -1 (vmio_unwinder_error says why).
int vmio_unwinder_report_end(vmio_unwinder *unwinder);

/// Unwinds thread `tid`, which must be in a ptrace stop held by the calling thread
/// (dwfl_getthread_frames), calling `callback` for each frame. Returns 0 when the unwinder
/// reached the outermost frame by the rules (the CFI leaves the return address undefined),
/// 1 when the callback stopped it, and -1 when it could not go on: vmio_unwinder_error says
/// why, and *regs_errno is the errno of a failed PTRACE_GETREGS (0 otherwise).
int vmio_unwinder_run(vmio_unwinder *unwinder, pid_t tid, vmio_frame_callback callback, void *context,
                      int *regs_errno);

/// The symbol whose extent holds `address` in the module mapped there
/// (dwfl_module_addrinfo: .symtab, else the separate debug file's, else .dynsym), and how
/// far past its start the address is. NULL when there is none. The name stays valid as
/// long as the session.
const char *vmio_unwinder_symbol(vmio_unwinder *unwinder, uint64_t address, uint64_t *offset);

/// The last libdwfl error: dwfl_errmsg(-1).
const char *vmio_unwinder_error(void);

/// A C++ (Itanium ABI) mangled name as the C++ runtime demangles it (__cxa_demangle):
/// a malloc'd string the caller frees, or NULL when `name` is not a mangled name
/// (it must start with _Z).
char *vmio_demangle(const char *name);

#endif
