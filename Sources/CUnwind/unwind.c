// See CUnwind.h. The unwinding itself is libdwfl's (dwfl_getthread_frames, the way
// eu-stack unwinds): CFI from .eh_frame, then from .debug_frame, then the x86-64
// frame-pointer chain. What the shim adds is the answer to "how was this frame found",
// which libdwfl does not report: it asks the same questions in the same order
// (__libdwfl_frame_unwind in elfutils' libdwfl/frame_unwind.c) before libdwfl steps.
#define _GNU_SOURCE
#include "CUnwind.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>

// The C++ runtime's demangler (libstdc++; declared in <cxxabi.h>, a C++ header).
extern char *__cxa_demangle(const char *mangled, char *buffer, size_t *length, int *status);

struct vmio_unwinder {
    Dwfl *dwfl;
    pid_t pid;
    bool attached;
    vmio_read_word read;
    void *context;
    /// The thread being unwound (PTRACE_PEEKDATA reads through it).
    pid_t tid;
    /// errno of the last failed PTRACE_GETREGS.
    int regs_errno;
};

static char *debuginfo_path = NULL;  // libdwfl's default: ":.debug:/usr/lib/debug"

static const Dwfl_Callbacks callbacks = {
    // Regular files by name; "[vdso: PID]" and deleted files from /proc/PID/mem.
    .find_elf = dwfl_linux_proc_find_elf,
    // The file itself, then /usr/lib/debug/.build-id/…, .gnu_debuglink.
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

// ---- thread callbacks --------------------------------------------------------

static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_arg) {
    (void)dwfl, (void)arg, (void)thread_arg;
    return 0;  // threads are named by the caller, one at a time (get_thread)
}

static bool get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_arg) {
    (void)dwfl, (void)tid;
    *thread_arg = arg;
    return true;
}

static bool memory_read(Dwfl *dwfl, Dwarf_Addr address, Dwarf_Word *result, void *arg) {
    (void)dwfl;
    vmio_unwinder *u = arg;
    if (u->read) {
        uint64_t word;
        if (u->read(u->context, (uint64_t)address, &word) != 0) return false;
        *result = (Dwarf_Word)word;
        return true;
    }
    errno = 0;
    long word = ptrace(PTRACE_PEEKDATA, u->tid, (void *)(uintptr_t)address, NULL);
    if (errno != 0) return false;
    *result = (Dwarf_Word)word;
    return true;
}

static bool set_initial_registers(Dwfl_Thread *thread, void *arg) {
    vmio_unwinder *u = arg;
    struct user_regs_struct r;
    if (ptrace(PTRACE_GETREGS, dwfl_thread_tid(thread), NULL, &r) != 0) {
        u->regs_errno = errno;
        return false;
    }
    // The x86-64 DWARF register numbers: rax rdx rcx rbx rsi rdi rbp rsp r8…r15, then the
    // return address column (16), which holds the pc of the initial frame.
    Dwarf_Word regs[17] = {
        r.rax, r.rdx, r.rcx, r.rbx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8,
        r.r9,  r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip,
    };
    return dwfl_thread_state_registers(thread, 0, 17, regs);
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
    .next_thread = next_thread,
    .get_thread = get_thread,
    .memory_read = memory_read,
    .set_initial_registers = set_initial_registers,
};

// ---- the session -------------------------------------------------------------

vmio_unwinder *vmio_unwinder_create(pid_t pid, vmio_read_word read, void *context) {
    vmio_unwinder *u = calloc(1, sizeof *u);
    if (!u) return NULL;
    u->dwfl = dwfl_begin(&callbacks);
    if (!u->dwfl) {
        free(u);
        return NULL;
    }
    u->pid = pid;
    u->read = read;
    u->context = context;
    return u;
}

void vmio_unwinder_destroy(vmio_unwinder *u) {
    if (!u) return;
    dwfl_end(u->dwfl);
    free(u);
}

void vmio_unwinder_report_begin(vmio_unwinder *u) { dwfl_report_begin(u->dwfl); }

int vmio_unwinder_report(vmio_unwinder *u, const char *name, uint64_t start, uint64_t end) {
    return dwfl_report_module(u->dwfl, name, start, end) ? 0 : -1;
}

int vmio_unwinder_report_end(vmio_unwinder *u) {
    if (dwfl_report_end(u->dwfl, NULL, NULL) != 0) return -1;
    if (u->attached) return 0;
    if (!dwfl_attach_state(u->dwfl, NULL, u->pid, &thread_callbacks, u)) return -1;
    u->attached = true;
    return 0;
}

const char *vmio_unwinder_error(void) { return dwfl_errmsg(-1); }

// ---- unwinding ---------------------------------------------------------------

/// The CFI libdwfl will use to step from a frame at `pc` (already adjusted: pc - 1 for a
/// return address), as __libdwfl_frame_unwind chooses it: the module's .eh_frame if it
/// has an entry for pc, else its .debug_frame if that has one, else none (the frame-pointer
/// chain). *is_signal is the entry's signal-frame mark.
static int cfi_source(Dwfl *dwfl, Dwarf_Addr pc, bool *is_signal) {
    *is_signal = false;
    Dwfl_Module *module = dwfl_addrmodule(dwfl, pc);
    if (!module) return VMIO_FRAME_POINTER;
    Dwarf_Addr bias;
    Dwarf_Frame *frame;
    Dwarf_CFI *eh = dwfl_module_eh_cfi(module, &bias);
    if (eh && dwarf_cfi_addrframe(eh, pc - bias, &frame) == 0) {
        dwarf_frame_info(frame, NULL, NULL, is_signal);
        free(frame);
        return VMIO_FRAME_EH_FRAME;
    }
    Dwarf_CFI *debug = dwfl_module_dwarf_cfi(module, &bias);
    if (debug && dwarf_cfi_addrframe(debug, pc - bias, &frame) == 0) {
        dwarf_frame_info(frame, NULL, NULL, is_signal);
        free(frame);
        return VMIO_FRAME_DEBUG_FRAME;
    }
    return VMIO_FRAME_POINTER;
}

struct run {
    vmio_unwinder *u;
    vmio_frame_callback callback;
    void *context;
    int index;
    /// How the next frame will be found, and whether this one was reached through a
    /// signal frame (libdwfl then steps from its pc unadjusted).
    int next_source;
    bool after_signal;
    bool stopped;
};

static int frame_callback(Dwfl_Frame *state, void *arg) {
    struct run *run = arg;
    Dwarf_Addr pc;
    bool activation = false;
    if (!dwfl_frame_pc(state, &pc, &activation)) return DWARF_CB_ABORT;
    vmio_frame frame = {.pc = pc, .is_activation = activation};
    Dwarf_Word sp;
    if (dwfl_frame_reg(state, 7, &sp) == 0) {  // DWARF register 7: rsp
        frame.sp = sp;
        frame.has_sp = 1;
    }
    frame.source = run->index == 0 ? VMIO_FRAME_REGISTERS : run->next_source;
    bool is_signal;
    Dwarf_Addr step_pc = run->index == 0 || run->after_signal ? pc : pc - 1;
    run->next_source = cfi_source(run->u->dwfl, step_pc, &is_signal);
    frame.caller_source = run->next_source;
    run->after_signal = is_signal;
    frame.is_signal_frame = is_signal;
    run->index++;
    if (run->callback(run->context, &frame) != 0) {
        run->stopped = true;
        return DWARF_CB_ABORT;
    }
    return DWARF_CB_OK;
}

int vmio_unwinder_run(vmio_unwinder *u, pid_t tid, vmio_frame_callback callback, void *context,
                      int *regs_errno) {
    struct run run = {.u = u, .callback = callback, .context = context};
    u->tid = tid;
    u->regs_errno = 0;
    int result = dwfl_getthread_frames(u->dwfl, tid, frame_callback, &run);
    *regs_errno = u->regs_errno;
    if (run.stopped) return 1;
    return result == 0 ? 0 : -1;
}

// ---- names -------------------------------------------------------------------

const char *vmio_unwinder_symbol(vmio_unwinder *u, uint64_t address, uint64_t *offset) {
    Dwfl_Module *module = dwfl_addrmodule(u->dwfl, address);
    if (!module) return NULL;
    GElf_Off off = 0;
    GElf_Sym sym;
    const char *name = dwfl_module_addrinfo(module, address, &off, &sym, NULL, NULL, NULL);
    if (!name || !*name) return NULL;
    *offset = off;
    return name;
}

char *vmio_demangle(const char *name) {
    if (!name || name[0] != '_' || name[1] != 'Z') return NULL;
    int status = 0;
    char *out = __cxa_demangle(name, NULL, NULL, &status);
    if (status != 0) {
        free(out);
        return NULL;
    }
    return out;
}
