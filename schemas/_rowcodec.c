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

#include "sluice_buf.h"

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
    PyObject *ops;  /* {Op member: its index in the envelope's enum} */
    PyObject *tail; /* bytes: the envelope's table name and schema version */
    /* decode_event: the Op members in enum order, the TableSchema, the RowEvent and
     * SourcePosition classes (instances filled through their __dict__, as
     * row_compile.fast_constructor does), and the last source fields decoded */
    PyObject *op_list, *table, *event_type, *source_type;
    PyObject *last_source, *last_fields;
} RowPlan;

/* Attribute names of RowEvent and SourcePosition (schemas/events.py), interned once. */
static PyObject *s_table, *s_op, *s_before, *s_after, *s_source, *s_ts_ms, *s_task, *s_chunk,
    *s_restore_value, *s_file, *s_pos, *s_gtid, *s_row, *s_seq;

#define EPOCH_DAYS 719163 /* date(1970, 1, 1).toordinal() */
#define US_PER_DAY 86400000000LL

/* --- output buffer ---------------------------------------------------------------------- */

static inline int put_byte(Buf *b, unsigned char c) {
    if (buf_reserve(b, 1) < 0) return -1;
    b->data[b->len++] = (char)c;
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
    int r = buf_put(b, PyBytes_AS_STRING(out), PyBytes_GET_SIZE(out));
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
            return buf_put(b, s, size);
        }
        break;
    case K_BYTES:
        if (PyBytes_CheckExact(v)) {
            if (put_long(b, PyBytes_GET_SIZE(v)) < 0) return -1;
            return buf_put(b, PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v));
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

/* The row's values appended to b; -1 with an exception set on a bad value. */
static int put_values(Buf *b, RowPlan *self, PyObject *values) {
    PyObject *seq = PySequence_Fast(values, "row values must be a sequence");
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n != self->ncols) {
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "row has %zd values, the plan %zd columns", n, self->ncols);
        return -1;
    }
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < self->ncols; i++) {
        const Column *c = &self->cols[i];
        PyObject *v = items[i];
        int first = c->nullable ? 1 : 0;
        int r;
        if (v == Py_None && c->nullable) {
            r = put_byte(b, 0);
        } else if (c->string_branch && PyUnicode_Check(v)) {
            Py_ssize_t size;
            const char *s = PyUnicode_AsUTF8AndSize(v, &size);
            r = (!s || put_byte(b, 2 * first + 2) < 0 || put_long(b, size) < 0)
                    ? -1
                    : buf_put(b, s, size);
        } else if (c->nullable || c->string_branch) {
            r = put_byte(b, 2 * first) < 0 ? -1 : put_value(b, c, v);
        } else {
            r = put_value(b, c, v);
        }
        if (r < 0) {
            Py_DECREF(seq);
            return -1;
        }
    }
    Py_DECREF(seq);
    return 0;
}

static PyObject *RowPlan_encode(RowPlan *self, PyObject *values) {
    Buf b;
    buf_init(&b);
    if (put_values(&b, self, values) < 0) {
        buf_free(&b);
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(b.data, b.len);
    buf_free(&b);
    return out;
}

/* --- the whole envelope ------------------------------------------------------------------ */

/* 1 when obj is None or an exact str / int as the field wants; else 0 (the Python path). */
static int put_opt_str(Buf *b, PyObject *v, int optional) {
    if (v == Py_None && optional) return put_byte(b, 0);
    if (!PyUnicode_CheckExact(v)) return 1;
    Py_ssize_t size;
    const char *s = PyUnicode_AsUTF8AndSize(v, &size);
    if (!s) return -1;
    if (optional && put_byte(b, 2) < 0) return -1;
    if (put_long(b, size) < 0) return -1;
    return buf_put(b, s, size);
}

static int put_opt_long(Buf *b, PyObject *v, int optional) {
    if (v == Py_None && optional) return put_byte(b, 0);
    if (!PyLong_CheckExact(v)) return 1;
    int overflow = 0;
    long long n = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || (n == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 1;
    }
    if (optional && put_byte(b, 2) < 0) return -1;
    return put_long(b, n);
}

/* encode_event(event, header) -> header + the event's envelope, or NotImplemented when a
 * field is not of the type the fast path knows (the Python codec then encodes it, or says
 * which column is wrong). */
static PyObject *RowPlan_encode_event(RowPlan *self, PyObject *args) {
    PyObject *event, *header;
    if (!PyArg_ParseTuple(args, "OO!", &event, &PyBytes_Type, &header)) return NULL;
    PyObject *f[5] = {NULL}, *src[8] = {NULL};
    PyObject *names[5] = {s_op, s_before, s_after, s_source, s_ts_ms};
    PyObject *src_names[8] = {s_task, s_chunk, s_restore_value, s_file,
                              s_pos, s_gtid, s_row, s_seq};
    PyObject *out = NULL;
    Buf b;
    buf_init(&b);
    int r = 0;
    for (int i = 0; i < 5 && r == 0; i++)
        if (!(f[i] = PyObject_GetAttr(event, names[i]))) r = -1;
    for (int i = 0; i < 8 && r == 0; i++)
        if (!(src[i] = PyObject_GetAttr(f[3], src_names[i]))) r = -1;
    if (r < 0) goto done;
    PyObject *op = PyDict_GetItemWithError(self->ops, f[0]);
    if (!op) {
        if (!PyErr_Occurred()) r = 1;
        goto done;
    }
    if ((r = buf_put(&b, PyBytes_AS_STRING(header), PyBytes_GET_SIZE(header))) != 0) goto done;
    if ((r = put_opt_long(&b, op, 0)) != 0) goto done;
    for (int i = 1; i <= 2; i++) { /* before, after: ["null", row] */
        if (f[i] == Py_None) {
            r = put_byte(&b, 0);
        } else {
            r = put_byte(&b, 2);
            if (r == 0) r = put_values(&b, self, f[i]);
        }
        if (r) goto done;
    }
    /* source: task, chunk?, restore_value?, file?, pos?, gtid?, row?, then seq */
    if ((r = put_opt_str(&b, src[0], 0)) != 0) goto done;
    if ((r = put_opt_str(&b, src[1], 1)) != 0) goto done;
    if ((r = put_opt_str(&b, src[2], 1)) != 0) goto done;
    if ((r = put_opt_str(&b, src[3], 1)) != 0) goto done;
    if ((r = put_opt_long(&b, src[4], 1)) != 0) goto done;
    if ((r = put_opt_str(&b, src[5], 1)) != 0) goto done;
    if ((r = put_opt_long(&b, src[6], 1)) != 0) goto done;
    if ((r = put_opt_long(&b, src[7], 0)) != 0) goto done;
    { /* event_id: f"{task}:{seq}" */
        Py_ssize_t size;
        const char *task = PyUnicode_AsUTF8AndSize(src[0], &size);
        long long seq = PyLong_AsLongLong(src[7]);
        char digits[24];
        int n = snprintf(digits, sizeof digits, "%lld", seq);
        if (!task || (r = put_long(&b, size + 1 + n)) != 0 || (r = buf_put(&b, task, size)) != 0 ||
            (r = put_byte(&b, ':')) != 0 || (r = buf_put(&b, digits, n)) != 0) {
            if (!task) r = -1;
            goto done;
        }
    }
    if ((r = put_opt_long(&b, f[4], 0)) != 0) goto done;
    r = buf_put(&b, PyBytes_AS_STRING(self->tail), PyBytes_GET_SIZE(self->tail));
done:
    if (r == 0) out = PyBytes_FromStringAndSize(b.data, b.len);
    else if (r > 0) out = Py_NewRef(Py_NotImplemented);
    buf_free(&b);
    for (int i = 0; i < 5; i++) Py_XDECREF(f[i]);
    for (int i = 0; i < 8; i++) Py_XDECREF(src[i]);
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

/* The row's values at r->pos as a tuple; r->pos moves past them. */
static PyObject *RowPlan_decode_at(RowPlan *self, PyObject *data, Reader *rp) {
    Reader r = *rp;
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
    rp->pos = r.pos;
    return row;
fail:
    Py_DECREF(row);
    return NULL;
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
    PyObject *row = RowPlan_decode_at(self, data, &r);
    return row ? Py_BuildValue("(Nn)", row, r.pos) : NULL;
}


/* An instance of a dataclass without __init__: its __dict__ filled directly, as
 * schemas.row_compile.fast_constructor does (a frozen dataclass's __init__ goes through
 * object.__setattr__ for every field). Steals the references in values. */
static PyObject *make_instance(PyObject *cls, PyObject **names, PyObject **values, int n) {
    PyObject *obj = NULL, *dict = NULL;
    PyObject *empty = PyTuple_New(0);
    if (empty) obj = ((PyTypeObject *)cls)->tp_new((PyTypeObject *)cls, empty, NULL);
    Py_XDECREF(empty);
    if (obj) dict = PyObject_GenericGetDict(obj, NULL);
    for (int i = 0; i < n; i++) {
        if (dict && PyDict_SetItem(dict, names[i], values[i]) < 0) Py_CLEAR(obj);
        Py_DECREF(values[i]);
    }
    Py_XDECREF(dict);
    if (!dict) Py_CLEAR(obj);
    return obj;
}

static PyObject *read_opt(Reader *r, int is_str, int optional) {
    if (optional) {
        if (r->pos >= r->end) return truncated(), NULL;
        unsigned char tag = r->p[r->pos++];
        if (tag == 0) return Py_NewRef(Py_None);
        if (tag != 2) {
            PyErr_Format(PyExc_ValueError, "union branch %d out of range", tag >> 1);
            return NULL;
        }
    }
    if (is_str) return read_sized(r, 1);
    int64_t n;
    if (read_long(r, &n) < 0) return NULL;
    return PyLong_FromLongLong(n);
}

static PyObject *read_image(Reader *r, RowPlan *self, PyObject *data) {
    if (r->pos >= r->end) return truncated(), NULL;
    unsigned char tag = r->p[r->pos++];
    if (tag == 0) return Py_NewRef(Py_None);
    if (tag != 2) {
        PyErr_Format(PyExc_ValueError, "bad union branch %d for a row image", tag >> 1);
        return NULL;
    }
    PyObject *res = RowPlan_decode_at(self, data, r);
    return res;
}

/* decode_event(data, pos) -> RowEvent; IndexError/ValueError on bad input */
static PyObject *RowPlan_decode_event(RowPlan *self, PyObject *args) {
    PyObject *data;
    Py_ssize_t pos;
    if (!PyArg_ParseTuple(args, "O!n", &PyBytes_Type, &data, &pos)) return NULL;
    if (self->event_type == Py_None || self->source_type == Py_None) {
        PyErr_SetString(PyExc_TypeError, "this plan decodes row values only");
        return NULL;
    }
    Reader r = {(const unsigned char *)PyBytes_AS_STRING(data), pos, PyBytes_GET_SIZE(data)};
    if (pos < 0 || pos >= r.end) return truncated(), NULL;
    Py_ssize_t op_index = r.p[r.pos++] >> 1;
    if (op_index >= PyList_GET_SIZE(self->op_list)) {
        PyErr_Format(PyExc_ValueError, "op %zd out of range", op_index);
        return NULL;
    }
    PyObject *ev[6] = {NULL}, *src[8] = {NULL};
    ev[0] = Py_NewRef(PyList_GET_ITEM(self->op_list, op_index));
    ev[1] = Py_NewRef(self->table);
    if (!(ev[2] = read_image(&r, self, data)) || !(ev[3] = read_image(&r, self, data))) goto fail;
    /* The source fields before seq repeat from one event to the next (a snapshot part's
     * task and chunk): equal bytes decode to equal values, so they are decoded once. */
    Py_ssize_t cached = PyBytes_GET_SIZE(self->last_source);
    if (cached && self->last_fields != Py_None && r.end - r.pos >= cached &&
        memcmp(r.p + r.pos, PyBytes_AS_STRING(self->last_source), cached) == 0) {
        for (int i = 0; i < 7; i++) src[i] = Py_NewRef(PyTuple_GET_ITEM(self->last_fields, i));
        r.pos += cached;
    } else {
        Py_ssize_t start = r.pos;
        static const int is_str[7] = {1, 1, 1, 1, 0, 1, 0};
        for (int i = 0; i < 7; i++)
            if (!(src[i] = read_opt(&r, is_str[i], i > 0))) goto fail;
        PyObject *fields = PyTuple_Pack(7, src[0], src[1], src[2], src[3], src[4], src[5], src[6]);
        PyObject *raw = PyBytes_FromStringAndSize((const char *)r.p + start, r.pos - start);
        if (!fields || !raw) {
            Py_XDECREF(fields);
            Py_XDECREF(raw);
            goto fail;
        }
        Py_SETREF(self->last_fields, fields);
        Py_SETREF(self->last_source, raw);
    }
    if (!(src[7] = read_opt(&r, 0, 0))) goto fail;
    int64_t size, ts;
    if (read_long(&r, &size) < 0) goto fail; /* event_id: derived from task and seq */
    if (size < 0 || size > r.end - r.pos) {
        truncated();
        goto fail;
    }
    r.pos += size;
    if (read_long(&r, &ts) < 0 || !(ev[5] = PyLong_FromLongLong(ts))) goto fail;
    if (r.end - r.pos != PyBytes_GET_SIZE(self->tail) ||
        memcmp(r.p + r.pos, PyBytes_AS_STRING(self->tail), r.end - r.pos) != 0) {
        PyErr_SetString(PyExc_ValueError, "table name or schema version does not match the schema");
        goto fail;
    }
    PyObject *src_names[8] = {s_task, s_chunk, s_restore_value, s_file,
                              s_pos, s_gtid, s_row, s_seq};
    ev[4] = make_instance(self->source_type, src_names, src, 8);
    for (int i = 0; i < 8; i++) src[i] = NULL; /* stolen */
    if (!ev[4]) goto fail;
    PyObject *names[6] = {s_op, s_table, s_before, s_after, s_source, s_ts_ms};
    return make_instance(self->event_type, names, ev, 6);
fail:
    for (int i = 0; i < 6; i++) Py_XDECREF(ev[i]);
    for (int i = 0; i < 8; i++) Py_XDECREF(src[i]);
    return NULL;
}

/* --- the plan object -------------------------------------------------------------------- */

static void RowPlan_dealloc(RowPlan *self) {
    for (Py_ssize_t i = 0; i < self->ncols; i++) {
        Py_XDECREF(self->cols[i].encode);
        Py_XDECREF(self->cols[i].decode);
    }
    PyMem_Free(self->cols);
    Py_XDECREF(self->ops);
    Py_XDECREF(self->tail);
    Py_XDECREF(self->op_list);
    Py_XDECREF(self->table);
    Py_XDECREF(self->event_type);
    Py_XDECREF(self->source_type);
    Py_XDECREF(self->last_source);
    Py_XDECREF(self->last_fields);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* RowPlan(((kind, nullable, string_branch, encode, decode), ...), ops={}, tail=b"",
 *         table=None, event_type=None, source_type=None) */
static PyObject *RowPlan_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    PyObject *specs, *ops = NULL, *tail = NULL;
    PyObject *table = Py_None, *event_type = Py_None, *source_type = Py_None;
    static char *kwlist[] = {"specs", "ops", "tail", "table", "event_type", "source_type", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|O!O!OOO", kwlist, &PyTuple_Type, &specs,
                                     &PyDict_Type, &ops, &PyBytes_Type, &tail, &table,
                                     &event_type, &source_type))
        return NULL;
    RowPlan *self = (RowPlan *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    self->table = Py_NewRef(table);
    self->event_type = Py_NewRef(event_type);
    self->source_type = Py_NewRef(source_type);
    self->last_source = PyBytes_FromStringAndSize(NULL, 0);
    self->last_fields = Py_NewRef(Py_None);
    self->op_list = PyList_New(0);
    if (!self->last_source || !self->op_list) {
        Py_DECREF(self);
        return NULL;
    }
    if (ops) { /* op_list[index] = member */
        PyObject *key, *value;
        Py_ssize_t at = 0;
        if (PyList_SetSlice(self->op_list, 0, 0, NULL) < 0) goto bad;
        for (Py_ssize_t i = 0; i < PyDict_GET_SIZE(ops); i++)
            if (PyList_Append(self->op_list, Py_None) < 0) goto bad;
        while (PyDict_Next(ops, &at, &key, &value)) {
            Py_ssize_t i = PyLong_AsSsize_t(value);
            if (i < 0 || i >= PyList_GET_SIZE(self->op_list)) {
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "op index out of range");
                goto bad;
            }
            if (PyList_SetItem(self->op_list, i, Py_NewRef(key)) < 0) goto bad;
        }
    }
    self->ops = ops ? Py_NewRef(ops) : PyDict_New();
    self->tail = tail ? Py_NewRef(tail) : PyBytes_FromStringAndSize(NULL, 0);
    if (!self->ops || !self->tail) {
        Py_DECREF(self);
        return NULL;
    }
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
bad:
    Py_DECREF(self);
    return NULL;
}

static PyMethodDef RowPlan_methods[] = {
    {"encode", (PyCFunction)RowPlan_encode, METH_O, "values -> the row's Avro bytes"},
    {"encode_event", (PyCFunction)RowPlan_encode_event, METH_VARARGS,
     "(event, header) -> header + the event's envelope, or NotImplemented"},
    {"decode_event", (PyCFunction)RowPlan_decode_event, METH_VARARGS,
     "(data, pos) -> the RowEvent encoded there"},
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
    struct {
        PyObject **var;
        const char *name;
    } attrs[] = {{&s_table, "table"}, {&s_op, "op"},         {&s_before, "before"}, {&s_after, "after"},
                 {&s_source, "source"}, {&s_ts_ms, "ts_ms"},   {&s_task, "task"},
                 {&s_chunk, "chunk"},   {&s_restore_value, "restore_value"},
                 {&s_file, "file"},     {&s_pos, "pos"},       {&s_gtid, "gtid"},
                 {&s_row, "row"},       {&s_seq, "seq"}};
    for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++)
        if (!(*attrs[i].var = PyUnicode_InternFromString(attrs[i].name))) return NULL;
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
