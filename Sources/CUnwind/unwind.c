// See CUnwind.h. Delegation only: every call maps onto one libunwind call.
#include "CUnwind.h"

#include <libunwind-ptrace.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(VMIO_UNW_ENOINFO == UNW_ENOINFO, "UNW_ENOINFO");
_Static_assert(VMIO_UNW_EBADFRAME == UNW_EBADFRAME, "UNW_EBADFRAME");
_Static_assert(VMIO_UNW_ENOMEM == UNW_ENOMEM, "UNW_ENOMEM");

struct vmio_unw_space {
    unw_addr_space_t as;
    unw_accessors_t accessors;
    vmio_unw_read_word read;
    void *context;
};

struct vmio_unw_cursor {
    vmio_unw_space *space;
    void *upt;
    unw_cursor_t cursor;
};

// libunwind hands access_mem the address space and the _UPT_ info, neither of which can
// carry our reader (and _UPT_find_proc_info passes its own argument on). Every libunwind
// call that may read memory runs synchronously inside one of the wrappers below, so the
// wrapper names the space for the duration of the call in a thread-local.
static __thread vmio_unw_space *current_space;

static int access_mem(unw_addr_space_t as, unw_word_t address, unw_word_t *value, int write, void *arg) {
    (void)as;
    (void)arg;
    vmio_unw_space *space = current_space;
    if (write || !space) return -UNW_EINVAL;
    uint64_t word;
    if (space->read(space->context, (uint64_t)address, &word) != 0) return -UNW_EINVAL;
    *value = (unw_word_t)word;
    return 0;
}

vmio_unw_space *vmio_unw_create_space(vmio_unw_read_word read, void *context) {
    vmio_unw_space *space = calloc(1, sizeof *space);
    if (!space) return NULL;
    space->accessors = _UPT_accessors;
    if (read) space->accessors.access_mem = access_mem;
    space->read = read;
    space->context = context;
    space->as = unw_create_addr_space(&space->accessors, 0);
    if (!space->as) {
        free(space);
        return NULL;
    }
    return space;
}

void vmio_unw_destroy_space(vmio_unw_space *space) {
    if (!space) return;
    unw_destroy_addr_space(space->as);
    free(space);
}

#define WITH_SPACE(s, call)                 \
    vmio_unw_space *saved = current_space; \
    current_space = (s);                    \
    int result = (call);                    \
    current_space = saved;                  \
    return result

int vmio_unw_init(vmio_unw_space *space, pid_t tid, vmio_unw_cursor **out) {
    vmio_unw_cursor *c = calloc(1, sizeof *c);
    if (!c) return -UNW_ENOMEM;
    c->space = space;
    c->upt = _UPT_create(tid);
    if (!c->upt) {
        free(c);
        return -UNW_ENOMEM;
    }
    vmio_unw_space *saved = current_space;
    current_space = space;
    int result = unw_init_remote(&c->cursor, space->as, c->upt);
    current_space = saved;
    if (result < 0) {
        _UPT_destroy(c->upt);
        free(c);
        return result;
    }
    *out = c;
    return 0;
}

void vmio_unw_destroy(vmio_unw_cursor *cursor) {
    if (!cursor) return;
    _UPT_destroy(cursor->upt);
    free(cursor);
}

int vmio_unw_step(vmio_unw_cursor *c) { WITH_SPACE(c->space, unw_step(&c->cursor)); }

int vmio_unw_get_ip(vmio_unw_cursor *c, uint64_t *ip) {
    unw_word_t value = 0;
    vmio_unw_space *saved = current_space;
    current_space = c->space;
    int result = unw_get_reg(&c->cursor, UNW_REG_IP, &value);
    current_space = saved;
    *ip = (uint64_t)value;
    return result;
}

int vmio_unw_get_sp(vmio_unw_cursor *c, uint64_t *sp) {
    unw_word_t value = 0;
    vmio_unw_space *saved = current_space;
    current_space = c->space;
    int result = unw_get_reg(&c->cursor, UNW_REG_SP, &value);
    current_space = saved;
    *sp = (uint64_t)value;
    return result;
}

int vmio_unw_is_signal_frame(vmio_unw_cursor *c) { WITH_SPACE(c->space, unw_is_signal_frame(&c->cursor)); }

int vmio_unw_get_proc_name(vmio_unw_cursor *c, char *buffer, size_t length, uint64_t *offset) {
    unw_word_t off = 0;
    if (length > 0) buffer[0] = 0;
    vmio_unw_space *saved = current_space;
    current_space = c->space;
    int result = unw_get_proc_name(&c->cursor, buffer, length, &off);
    current_space = saved;
    *offset = (uint64_t)off;
    return result;
}

const char *vmio_unw_strerror(int code) { return unw_strerror(code); }
