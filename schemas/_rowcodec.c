/* Avro binary encoding of a row's values, in C: the inner loop of schemas/row_binary.py.
 *
 * A reader encodes and a writer decodes every value of every row; in Python that was half
 * of a snapshot reader's time and most of a writer's (issue #9). This module does the
 * common value types here and calls back into the Python codec for everything else, so it
 * writes and reads exactly the bytes of schemas.row_compile's generated code (the unit tests
 * compare both, value by value and byte by byte):
 *
 *   kind      encodes                                decodes to
 *   LONG      int (zig-zag varint)                   int
 *   DOUBLE    float (8 bytes LE)                     float
 *   FLOAT     float (4 bytes LE)                     - (Python: shortest float32 repr)
 *   STRING    str (length + UTF-8)                   str
 *   BYTES     bytes (length + bytes)                 bytes
 *   DATE      date (days since 1970-01-01)           date
 *   DATETIME  naive datetime (micros since epoch)    datetime
 *   TIME      timedelta (micros)                     timedelta
 *   OTHER     - (Python)                             - (Python)
 *
 * Any value of another type than the one expected (a bool or Decimal for a LONG column, an
 * aware datetime, a value out of a type's range) goes to the column's Python function too,
 * which either encodes it the same way or raises the error the caller turns into a message
 * naming the column.
 *
 * A column's union (null first when nullable, then the value, then "string" for zero
 * dates) is handled here: tag 2*first for the value, 0 for null, 2*first+2 for a string.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <stdint.h>
#include <string.h>

enum Kind { K_OTHER = 0, K_LONG, K_DOUBLE, K_FLOAT, K_STRING, K_BYTES, K_DATE, K_DATETIME, K_TIME };

typedef struct {
    int kind;
    int nullable;
    int string_branch;
    PyObject *encode; /* the Python value encoder: value -> bytes */
    PyObject *decode; /* the Python value decoder: (data, pos) -> (value, pos) */
} Column;

typedef struct {
    PyObject_HEAD
    Py_ssize_t ncols;
    Column *cols;
} RowPlan;

#define EPOCH_DAYS 719163 /* date(1970, 1, 1).toordinal() */
#define US_PER_DAY 86400000000LL

/* --- output buffer ---------------------------------------------------------------------- */

typedef struct {
    char *data;
    Py_ssize_t len, cap;
    char local[512];
} Buf;

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

static void buf_free(Buf *b) {
    if (b->data != b->local) PyMem_Free(b->data);
}

static inline int put_byte(Buf *b, unsigned char c) {
    if (buf_reserve(b, 1) < 0) return -1;
    b->data[b->len++] = (char)c;
    return 0;
}

static inline int put_raw(Buf *b, const char *p, Py_ssize_t n) {
    if (buf_reserve(b, n) < 0) return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static inline int put_long(Buf *b, int64_t v) {
    uint64_t n = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    if (buf_reserve(b, 10) < 0) return -1;
    while (n >= 0x80) {
        b->data[b->len++] = (char)((n & 0x7F) | 0x80);
        n >>= 7;
    }
    b->data[b->len++] = (char)n;
    return 0;
}

/* --- civil dates (Howard Hinnant's days_from_civil / civil_from_days) -------------------- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static inline int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* --- encoding --------------------------------------------------------------------------- */

/* The Python encoder's bytes for one value (tag not included). */
static int put_python(Buf *b, const Column *c, PyObject *value) {
    PyObject *out = PyObject_CallOneArg(c->encode, value);
    if (!out) return -1;
    if (!PyBytes_Check(out)) {
        Py_DECREF(out);
        PyErr_SetString(PyExc_TypeError, "a value encoder returned no bytes");
        return -1;
    }
    int r = put_raw(b, PyBytes_AS_STRING(out), PyBytes_GET_SIZE(out));
    Py_DECREF(out);
    return r;
}

static int put_value(Buf *b, const Column *c, PyObject *v) {
    switch (c->kind) {
    case K_LONG:
        if (PyLong_Check(v)) {
            int overflow = 0;
            long long n = PyLong_AsLongLongAndOverflow(v, &overflow);
            if (!overflow && !(n == -1 && PyErr_Occurred())) return put_long(b, n);
            PyErr_Clear();
        }
        break;
    case K_DOUBLE:
        if (PyFloat_CheckExact(v)) {
            if (buf_reserve(b, 8) < 0) return -1;
            if (PyFloat_Pack8(PyFloat_AS_DOUBLE(v), b->data + b->len, 1) < 0) return -1;
            b->len += 8;
            return 0;
        }
        break;
    case K_FLOAT:
        if (PyFloat_CheckExact(v)) {
            if (buf_reserve(b, 4) < 0) return -1;
            if (PyFloat_Pack4(PyFloat_AS_DOUBLE(v), b->data + b->len, 1) < 0) return -1;
            b->len += 4;
            return 0;
        }
        break;
    case K_STRING:
        if (PyUnicode_CheckExact(v)) {
            Py_ssize_t size;
            const char *s = PyUnicode_AsUTF8AndSize(v, &size);
            if (!s) return -1; /* lone surrogates: UnicodeEncodeError, as str.encode() */
            if (put_long(b, size) < 0) return -1;
            return put_raw(b, s, size);
        }
        break;
    case K_BYTES:
        if (PyBytes_CheckExact(v)) {
            if (put_long(b, PyBytes_GET_SIZE(v)) < 0) return -1;
            return put_raw(b, PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v));
        }
        break;
    case K_DATE:
        if (PyDate_CheckExact(v)) {
            int64_t days = days_from_civil(PyDateTime_GET_YEAR(v), PyDateTime_GET_MONTH(v),
                                           PyDateTime_GET_DAY(v));
            return put_long(b, days);
        }
        break;
    case K_DATETIME:
        if (PyDateTime_CheckExact(v) && PyDateTime_DATE_GET_TZINFO(v) == Py_None) {
            int64_t days = days_from_civil(PyDateTime_GET_YEAR(v), PyDateTime_GET_MONTH(v),
                                           PyDateTime_GET_DAY(v));
            int64_t secs = PyDateTime_DATE_GET_HOUR(v) * 3600 +
                           PyDateTime_DATE_GET_MINUTE(v) * 60 + PyDateTime_DATE_GET_SECOND(v);
            return put_long(b, days * US_PER_DAY + secs * 1000000 +
                                   PyDateTime_DATE_GET_MICROSECOND(v));
        }
        break;
    case K_TIME:
        if (PyDelta_CheckExact(v)) {
            int64_t days = PyDateTime_DELTA_GET_DAYS(v);
            if (days > -100000000 && days < 100000000) /* no int64 overflow */
                return put_long(b, days * US_PER_DAY +
                                       (int64_t)PyDateTime_DELTA_GET_SECONDS(v) * 1000000 +
                                       PyDateTime_DELTA_GET_MICROSECONDS(v));
        }
        break;
    }
    return put_python(b, c, v);
}

static PyObject *RowPlan_encode(RowPlan *self, PyObject *values) {
    PyObject *seq = PySequence_Fast(values, "row values must be a sequence");
    if (!seq) return NULL;
    if (PySequence_Fast_GET_SIZE(seq) != self->ncols) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "row has %zd values, the plan %zd columns",
                     PySequence_Fast_GET_SIZE(values), self->ncols);
        return NULL;
    }
    PyObject **items = PySequence_Fast_ITEMS(seq);
    Buf b = {.len = 0, .cap = sizeof(b.local)};
    b.data = b.local;
    for (Py_ssize_t i = 0; i < self->ncols; i++) {
        const Column *c = &self->cols[i];
        PyObject *v = items[i];
        int first = c->nullable ? 1 : 0;
        int r;
        if (v == Py_None && c->nullable) {
            r = put_byte(&b, 0);
        } else if (c->string_branch && PyUnicode_Check(v)) {
            Py_ssize_t size;
            const char *s = PyUnicode_AsUTF8AndSize(v, &size);
            r = (!s || put_byte(&b, 2 * first + 2) < 0 || put_long(&b, size) < 0)
                    ? -1
                    : put_raw(&b, s, size);
        } else if (c->nullable || c->string_branch) {
            r = put_byte(&b, 2 * first) < 0 ? -1 : put_value(&b, c, v);
        } else {
            r = put_value(&b, c, v);
        }
        if (r < 0) {
            buf_free(&b);
            Py_DECREF(seq);
            return NULL;
        }
    }
    Py_DECREF(seq);
    PyObject *out = PyBytes_FromStringAndSize(b.data, b.len);
    buf_free(&b);
    return out;
}

/* --- decoding --------------------------------------------------------------------------- */

typedef struct {
    const unsigned char *p;
    Py_ssize_t pos, end;
} Reader;

static int truncated(void) {
    PyErr_SetString(PyExc_IndexError, "Avro data ends inside a row");
    return -1;
}

static int read_long(Reader *r, int64_t *out) {
    uint64_t n = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->pos >= r->end) return truncated();
        unsigned char byte = r->p[r->pos++];
        n |= (uint64_t)(byte & 0x7F) << shift;
        if (byte < 0x80) {
            *out = (int64_t)(n >> 1) ^ -(int64_t)(n & 1);
            return 0;
        }
    }
    PyErr_SetString(PyExc_ValueError, "Avro long longer than 10 bytes");
    return -1;
}

/* The Python decoder for one value at r->pos; moves r->pos past it. */
static PyObject *python_value(Reader *r, const Column *c, PyObject *data) {
    PyObject *res = PyObject_CallFunction(c->decode, "On", data, r->pos);
    if (!res) return NULL;
    PyObject *value;
    Py_ssize_t pos;
    if (!PyArg_ParseTuple(res, "On", &value, &pos)) {
        Py_DECREF(res);
        return NULL;
    }
    Py_INCREF(value);
    Py_DECREF(res);
    r->pos = pos;
    return value;
}

static PyObject *read_sized(Reader *r, int text) {
    int64_t size;
    if (read_long(r, &size) < 0) return NULL;
    if (size < 0) {
        PyErr_SetString(PyExc_ValueError, "negative Avro length");
        return NULL;
    }
    if (size > r->end - r->pos) {
        truncated();
        return NULL;
    }
    const char *s = (const char *)r->p + r->pos;
    r->pos += size;
    return text ? PyUnicode_DecodeUTF8(s, size, NULL) : PyBytes_FromStringAndSize(s, size);
}

static PyObject *get_value(Reader *r, const Column *c, PyObject *data) {
    Py_ssize_t start = r->pos;
    int64_t n;
    switch (c->kind) {
    case K_LONG:
        if (read_long(r, &n) < 0) return NULL;
        return PyLong_FromLongLong(n);
    case K_DOUBLE:
        if (r->end - r->pos < 8) {
            truncated();
            return NULL;
        }
        r->pos += 8;
        return PyFloat_FromDouble(PyFloat_Unpack8((const char *)r->p + start, 1));
    case K_STRING:
        return read_sized(r, 1);
    case K_BYTES:
        return read_sized(r, 0);
    case K_DATE:
        if (read_long(r, &n) < 0) return NULL;
        if (n > -719162 && n < 2932897) { /* year 1..9999; else Python raises its error */
            int y, m, d;
            civil_from_days(n, &y, &m, &d);
            return PyDate_FromDate(y, m, d);
        }
        break;
    case K_DATETIME:
        if (read_long(r, &n) < 0) return NULL;
        if (n > -62135596800000000LL && n < 253402300800000000LL) {
            int64_t days = floor_div(n, US_PER_DAY), us = n - days * US_PER_DAY;
            int y, m, d;
            civil_from_days(days, &y, &m, &d);
            int64_t secs = us / 1000000;
            return PyDateTime_FromDateAndTime(y, m, d, (int)(secs / 3600), (int)(secs / 60 % 60),
                                              (int)(secs % 60), (int)(us % 1000000));
        }
        break;
    case K_TIME:
        if (read_long(r, &n) < 0) return NULL;
        if (n > -(1LL << 62) && n < (1LL << 62)) { /* ±53 million days: in timedelta's range */
            int64_t days = floor_div(n, US_PER_DAY), us = n - days * US_PER_DAY;
            return PyDelta_FromDSU((int)days, (int)(us / 1000000), (int)(us % 1000000));
        }
        break;
    }
    r->pos = start;
    return python_value(r, c, data);
}

static PyObject *RowPlan_decode(RowPlan *self, PyObject *args) {
    PyObject *data;
    Py_ssize_t pos;
    if (!PyArg_ParseTuple(args, "O!n", &PyBytes_Type, &data, &pos)) return NULL;
    Reader r = {(const unsigned char *)PyBytes_AS_STRING(data), pos, PyBytes_GET_SIZE(data)};
    if (pos < 0 || pos > r.end) {
        truncated();
        return NULL;
    }
    PyObject *row = PyTuple_New(self->ncols);
    if (!row) return NULL;
    for (Py_ssize_t i = 0; i < self->ncols; i++) {
        const Column *c = &self->cols[i];
        PyObject *v;
        if (c->nullable || c->string_branch) {
            if (r.pos >= r.end) {
                truncated();
                goto fail;
            }
            int first = c->nullable ? 1 : 0;
            unsigned char tag = r.p[r.pos++];
            if (tag == 0 && first) {
                v = Py_NewRef(Py_None);
            } else if (tag == 2 * first) {
                v = get_value(&r, c, data);
            } else if (c->string_branch && tag == 2 * first + 2) {
                v = read_sized(&r, 1);
            } else {
                PyErr_Format(PyExc_ValueError, "union branch %d out of range", tag >> 1);
                goto fail;
            }
        } else {
            v = get_value(&r, c, data);
        }
        if (!v) goto fail;
        PyTuple_SET_ITEM(row, i, v);
    }
    return Py_BuildValue("(Nn)", row, r.pos);
fail:
    Py_DECREF(row);
    return NULL;
}

/* --- the plan object -------------------------------------------------------------------- */

static void RowPlan_dealloc(RowPlan *self) {
    for (Py_ssize_t i = 0; i < self->ncols; i++) {
        Py_XDECREF(self->cols[i].encode);
        Py_XDECREF(self->cols[i].decode);
    }
    PyMem_Free(self->cols);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* RowPlan(((kind, nullable, string_branch, encode, decode), ...)) */
static PyObject *RowPlan_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    PyObject *specs;
    if (!PyArg_ParseTuple(args, "O!", &PyTuple_Type, &specs)) return NULL;
    RowPlan *self = (RowPlan *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(specs);
    self->cols = PyMem_Calloc(n ? n : 1, sizeof(Column));
    if (!self->cols) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Column *c = &self->cols[i];
        PyObject *enc, *dec;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(specs, i), "ippOO", &c->kind, &c->nullable,
                              &c->string_branch, &enc, &dec)) {
            Py_DECREF(self);
            return NULL;
        }
        if (c->kind < K_OTHER || c->kind > K_TIME) c->kind = K_OTHER;
        c->encode = Py_NewRef(enc);
        c->decode = Py_NewRef(dec);
        self->ncols = i + 1;
    }
    return (PyObject *)self;
}

static PyMethodDef RowPlan_methods[] = {
    {"encode", (PyCFunction)RowPlan_encode, METH_O, "values -> the row's Avro bytes"},
    {"decode", (PyCFunction)RowPlan_decode, METH_VARARGS,
     "(data, pos) -> (values tuple, position after the row)"},
    {NULL}};

static PyTypeObject RowPlanType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "schemas._rowcodec.RowPlan",
    .tp_basicsize = sizeof(RowPlan),
    .tp_dealloc = (destructor)RowPlan_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One table's row values: Avro encode/decode in C, Python for the rest.",
    .tp_methods = RowPlan_methods,
    .tp_new = RowPlan_new,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_rowcodec",
                                    "C inner loop of schemas.row_binary.", -1, NULL};

PyMODINIT_FUNC PyInit__rowcodec(void) {
    PyDateTime_IMPORT;
    if (!PyDateTimeAPI) return NULL;
    if (PyType_Ready(&RowPlanType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddObjectRef(m, "RowPlan", (PyObject *)&RowPlanType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    static const struct {
        const char *name;
        int value;
    } kinds[] = {{"OTHER", K_OTHER}, {"LONG", K_LONG},         {"DOUBLE", K_DOUBLE},
                 {"FLOAT", K_FLOAT}, {"STRING", K_STRING},     {"BYTES", K_BYTES},
                 {"DATE", K_DATE},   {"DATETIME", K_DATETIME}, {"TIME", K_TIME}};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (PyModule_AddIntConstant(m, kinds[i].name, kinds[i].value) < 0) {
            Py_DECREF(m);
            return NULL;
        }
    return m;
}
