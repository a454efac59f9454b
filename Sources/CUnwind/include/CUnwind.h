// Thin C shim over libunwind-ptrace (whose entry points are macros Swift cannot
// import: unw_init_remote is really _Ux86_64_init_remote, and so on) and the
// libelf headers the symbol tables are read with. No logic beyond delegation:
// the memory reader behind the custom access_mem, and its page cache, live in Swift.
#ifndef CUNWIND_H
#define CUNWIND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <gelf.h>
#include <libelf.h>

/// Reads the 8 bytes at `address` of the target into *word. Returns 0, or -1 when the
/// memory cannot be read. `context` is the pointer given to vmio_unw_create_space.
typedef int (*vmio_unw_read_word)(void *context, uint64_t address, uint64_t *word);

/// An unwind address space: libunwind's unw_addr_space_t and its accessors.
typedef struct vmio_unw_space vmio_unw_space;
/// One thread's unwind: its _UPT_create info and an unw_cursor_t.
typedef struct vmio_unw_cursor vmio_unw_cursor;

/// unw_create_addr_space over _UPT_accessors. With `read` NULL, memory is read by
/// _UPT_access_mem (one PTRACE_PEEKDATA a word); otherwise access_mem calls
/// read(context, ...) and every other accessor stays _UPT_'s. Writes are refused.
/// NULL when libunwind cannot create the space.
vmio_unw_space *vmio_unw_create_space(vmio_unw_read_word read, void *context);
/// unw_destroy_addr_space, and frees the space.
void vmio_unw_destroy_space(vmio_unw_space *space);

/// _UPT_create(tid) + unw_init_remote. The thread must be in a ptrace stop held by
/// the calling thread. Returns 0 and sets *out, or a negative UNW_E* code.
int vmio_unw_init(vmio_unw_space *space, pid_t tid, vmio_unw_cursor **out);
/// _UPT_destroy, and frees the cursor.
void vmio_unw_destroy(vmio_unw_cursor *cursor);

/// unw_step: > 0 stepped to the caller, 0 at the end of the stack, < 0 a UNW_E* code.
int vmio_unw_step(vmio_unw_cursor *cursor);
/// unw_get_reg(UNW_REG_IP) / unw_get_reg(UNW_REG_SP): 0 or a negative UNW_E* code.
int vmio_unw_get_ip(vmio_unw_cursor *cursor, uint64_t *ip);
int vmio_unw_get_sp(vmio_unw_cursor *cursor, uint64_t *sp);
/// unw_is_signal_frame: > 0 for a signal frame, 0 if not, < 0 a UNW_E* code.
int vmio_unw_is_signal_frame(vmio_unw_cursor *cursor);
/// unw_get_proc_name: 0 (or -UNW_ENOMEM with a truncated name), else a negative UNW_E* code.
int vmio_unw_get_proc_name(vmio_unw_cursor *cursor, char *buffer, size_t length, uint64_t *offset);
/// unw_strerror
const char *vmio_unw_strerror(int code);

/// The UNW_E* codes the caller tells apart.
enum {
    VMIO_UNW_ENOINFO = 10,   // UNW_ENOINFO: no unwind info for this IP
    VMIO_UNW_EBADFRAME = 7,  // UNW_EBADFRAME
    VMIO_UNW_ENOMEM = 2,     // UNW_ENOMEM: out of memory (or the name buffer is too small)
};

#endif
