/* A growable output buffer for Sluice's C extensions: starts in `local` (no allocation for
   the common small result), doubles on the Python heap when it must grow. Header-only: each
   extension gets its own static copy. Initialise with buf_init; release with buf_free. */
#ifndef SLUICE_BUF_H
#define SLUICE_BUF_H

#include <Python.h>
#include <string.h>

typedef struct {
    char *data;
    Py_ssize_t len, cap;
    char local[1024];
} Buf;

static inline void buf_init(Buf *b) {
    b->len = 0;
    b->cap = sizeof(b->local);
    b->data = b->local;
}

static int buf_reserve(Buf *b, Py_ssize_t more) {
    if (b->len + more <= b->cap) return 0;
    Py_ssize_t cap = b->cap * 2;
    while (cap < b->len + more) cap *= 2;
    char *data;
    if (b->data == b->local) {
        data = PyMem_Malloc(cap);
        if (data) memcpy(data, b->local, b->len);
    } else {
        data = PyMem_Realloc(b->data, cap);
    }
    if (!data) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static inline int buf_put(Buf *b, const char *p, Py_ssize_t n) {
    if (buf_reserve(b, n) < 0) return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static inline void buf_free(Buf *b) {
    if (b->data != b->local) PyMem_Free(b->data);
}

#endif
