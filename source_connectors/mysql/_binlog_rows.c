/* Row images of one binlog WRITE/UPDATE/DELETE rows event, decoded in C (issue #9).

   The values are exactly those of the Python reference, binlog_rows.decode_python: one C
   function here per function there. source_connectors/mysql/binlog_rows.py builds the
   per-table plan (one entry per column: how the binlog stores it, what the schema's type
   makes of it); the unit tests decode hand-made and random bodies both ways, the integration
   tests real binlogs of every column type, and compare every value and its type.

   Every read is bounds-checked against the event body (its end excludes the CRC32 footer):
   a truncated or garbage body raises ValueError, never reads past the buffer. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* How a column is read: the type the binlog declares (signedness included). */
enum {
    K_INT8 = 1, K_UINT8, K_INT16, K_UINT16, K_INT24, K_UINT24, K_INT32, K_UINT32,
    K_INT64, K_UINT64, K_FLOAT, K_DOUBLE, K_YEAR, K_DECIMAL, K_DATETIME2, K_DATE,
    K_TIME2, K_TIMESTAMP2, K_STRING, K_ENUM, K_BIT, K_SET, K_DATETIME, K_TIME, K_TIMESTAMP,
    K_LAST
};
/* What the schema's type makes of a non-NULL value (binlog_rows._repair). */
enum { F_NONE = 0, F_UNSIGNED, F_BYTES, F_PAD, F_YEAR, F_ZERO_TS, F_LAST };
/* K_STRING codecs: raw bytes (the library's LookupError case), UTF-8, any other codec. */
enum { C_BYTES = 0, C_UTF8, C_CODEC };

typedef struct {
    int kind, a, b, fix;
    long long fix_arg;
    PyObject *obj;     /* K_STRING/C_CODEC: the codec name; K_ENUM: labels or None; K_SET: members */
    PyObject *fix_obj; /* F_ZERO_TS: the zero timestamp's text */
    const char *codec;
} Col;

typedef struct {
    Py_ssize_t n;
    Col cols[];
} Plan;

static PyObject *Decimal; /* decimal.Decimal */
static const char PLAN_NAME[] = "sluice._binlog_rows.plan";

typedef struct {
    const unsigned char *p, *end, *base;
} Cur;

static int need(Cur *c, Py_ssize_t n) {
    if (c->end - c->p < n) {
        PyErr_Format(PyExc_ValueError,
                     "row image truncated: %zd bytes needed at body offset %zd, %zd left", n,
                     (Py_ssize_t)(c->p - c->base), (Py_ssize_t)(c->end - c->p));
        return -1;
    }
    return 0;
}

static uint64_t le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static uint64_t be(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

static int64_t be_signed(const unsigned char *p, int n) { /* n in 1..4 */
    uint64_t v = be(p, n);
    uint64_t sign = (uint64_t)1 << (8 * n - 1);
    return (int64_t)(v ^ sign) - (int64_t)sign;
}

static PyObject *integer(int64_t v, const Col *col) {
    if (col->fix == F_UNSIGNED && v < 0) {
        if (col->fix_arg >= 64) return PyLong_FromUnsignedLongLong((uint64_t)v);
        return PyLong_FromLongLong(v + ((int64_t)1 << col->fix_arg));
    }
    return PyLong_FromLongLong(v);
}

/* binlog_rows._decimal: the same text, then Decimal(text). */
static PyObject *read_decimal(Cur *c, const Col *col) {
    static const int dig2bytes[10] = {0, 1, 1, 2, 2, 3, 3, 4, 4, 4};
    int prec = col->a, dec = col->b, integral = prec - dec;
    int ui = integral / 9, uf = dec / 9, ci = integral - ui * 9, cf = dec - uf * 9;
    int total = dig2bytes[ci] + 4 * ui + 4 * uf + dig2bytes[cf];
    unsigned char tmp[64];
    char s[256];
    int k = 0;
    if (need(c, total) < 0) return NULL;
    memcpy(tmp, c->p, total);
    c->p += total;
    int positive = tmp[0] & 0x80;
    int64_t mask = positive ? 0 : -1;
    tmp[0] ^= 0x80;
    const unsigned char *q = tmp;
    if (!positive) s[k++] = '-';
    if (dig2bytes[ci]) {
        k += snprintf(s + k, sizeof s - k, "%lld", (long long)(be_signed(q, dig2bytes[ci]) ^ mask));
        q += dig2bytes[ci];
    }
    for (int i = 0; i < ui; i++, q += 4)
        k += snprintf(s + k, sizeof s - k, "%09lld", (long long)(be_signed(q, 4) ^ mask));
    s[k++] = '.';
    for (int i = 0; i < uf; i++, q += 4)
        k += snprintf(s + k, sizeof s - k, "%09lld", (long long)(be_signed(q, 4) ^ mask));
    if (dig2bytes[cf])
        k += snprintf(s + k, sizeof s - k, "%0*lld", cf,
                      (long long)(be_signed(q, dig2bytes[cf]) ^ mask));
    PyObject *text = PyUnicode_FromStringAndSize(s, k);
    if (text == NULL) return NULL;
    PyObject *v = PyObject_CallOneArg(Decimal, text);
    Py_DECREF(text);
    return v;
}

/* A value the datetime constructors reject becomes text; other errors propagate. */
static int rejected(void) {
    if (!PyErr_ExceptionMatches(PyExc_ValueError)) return 0;
    PyErr_Clear();
    return 1;
}

/* binlog_rows._datetime_or_text: a zero or partial date stays text, as PyMySQL leaves it. */
static PyObject *datetime_or_text(int year, int month, int day, int hour, int minute, int second,
                                  long micros, int fsp) {
    PyObject *v = PyDateTime_FromDateAndTime(year, month, day, hour, minute, second, (int)micros);
    if (v != NULL || !rejected()) return v;
    char s[64], frac[32];
    int k = snprintf(s, sizeof s, "%04d-%02d-%02d %02d:%02d:%02d", year, month, day, hour,
                     minute, second);
    if (fsp) {
        int f = snprintf(frac, sizeof frac, ".%06ld", micros);
        if (f > fsp + 1) f = fsp + 1;
        memcpy(s + k, frac, f);
        k += f;
    }
    return PyUnicode_FromStringAndSize(s, k);
}

/* binlog_rows._datetime2 */
static PyObject *read_datetime2(Cur *c, const Col *col) {
    static const long mult[4] = {0, 10000, 100, 1};
    int fs = (col->a + 1) / 2;
    if (need(c, 5 + fs) < 0) return NULL;
    uint64_t raw = be(c->p, 5);
    long micros = fs ? (long)be(c->p + 5, fs) * mult[fs] : 0;
    c->p += 5 + fs;
    int ym = (int)((raw >> 22) & 0x1FFFF);
    return datetime_or_text(ym / 13, ym % 13, (int)((raw >> 17) & 31), (int)((raw >> 12) & 31),
                            (int)((raw >> 6) & 63), (int)(raw & 63), micros, col->a);
}

/* binlog_rows._old_datetime: YYYYMMDDhhmmss as one little-endian integer */
static PyObject *read_old_datetime(Cur *c) {
    if (need(c, 8) < 0) return NULL;
    uint64_t v = le(c->p, 8);
    c->p += 8;
    uint64_t day_part = v / 1000000, time_part = v % 1000000;
    uint64_t year = day_part / 10000, md = day_part % 10000;
    return datetime_or_text((int)year, (int)(md / 100), (int)(md % 100), (int)(time_part / 10000),
                            (int)(time_part % 10000 / 100), (int)(time_part % 100), 0, 0);
}

/* binlog_rows._date */
static PyObject *read_date(Cur *c) {
    if (need(c, 3) < 0) return NULL;
    unsigned raw = (unsigned)le(c->p, 3);
    c->p += 3;
    int year = (int)(raw >> 9), month = (int)((raw >> 5) & 15), day = (int)(raw & 31);
    PyObject *v = PyDate_FromDate(year, month, day);
    if (v != NULL || !rejected()) return v;
    return PyUnicode_FromFormat("%04d-%02d-%02d", year, month, day);
}

static PyObject *delta(int64_t total_us) {
    const int64_t day_us = 86400LL * 1000000LL;
    int64_t days = total_us / day_us, rem = total_us % day_us;
    if (rem < 0) {
        rem += day_us;
        days--;
    }
    return PyDelta_FromDSU((int)days, (int)(rem / 1000000), (int)(rem % 1000000));
}

/* binlog_rows._time2 (MySQL's my_time_packed_from_binary) */
static PyObject *read_time2(Cur *c, const Col *col) {
    int size = (col->a + 1) / 2;
    int64_t packed;
    if (need(c, 3 + size) < 0) return NULL;
    if (size == 3) {
        packed = (int64_t)be(c->p, 6) - 0x800000000000LL;
    } else {
        int64_t intpart = (int64_t)be(c->p, 3) - 0x800000;
        int64_t frac = size ? (int64_t)be(c->p + 3, size) : 0;
        if (intpart < 0 && frac) {
            intpart += 1;
            frac -= size == 1 ? 0x100 : 0x10000;
        }
        packed = intpart * 16777216LL + frac * (size == 1 ? 10000 : size == 2 ? 100 : 0);
    }
    c->p += 3 + size;
    int negative = packed < 0;
    if (negative) packed = -packed;
    int64_t hms = packed >> 24, micros = packed & 0xFFFFFF;
    int64_t total = ((((hms >> 12) & 0x3FF) * 60 + ((hms >> 6) & 63)) * 60 + (hms & 63)) *
                        1000000LL + micros;
    return delta(negative ? -total : total);
}

/* binlog_rows._old_time: ±hhhmmss as a signed 3-byte little-endian integer */
static PyObject *read_old_time(Cur *c) {
    if (need(c, 3) < 0) return NULL;
    int64_t v = (int64_t)(le(c->p, 3) ^ 0x800000) - 0x800000;
    c->p += 3;
    int64_t a = v < 0 ? -v : v;
    int64_t total = ((a / 10000) * 3600 + (a % 10000 / 100) * 60 + a % 100) * 1000000LL;
    return delta(v < 0 ? -total : total);
}

/* binlog_rows._old_timestamp: unsigned seconds since the epoch, little-endian */
static PyObject *epoch_datetime(int64_t t, int64_t micro);
static PyObject *read_old_timestamp(Cur *c, const Col *col) {
    if (need(c, 4) < 0) return NULL;
    int64_t t = (int64_t)le(c->p, 4);
    c->p += 4;
    if (col->fix == F_ZERO_TS && t == 0) {
        Py_INCREF(col->fix_obj);
        return col->fix_obj;
    }
    return epoch_datetime(t, 0);
}

/* binlog_rows._timestamp2: seconds since the epoch (signed BE int32), then the fraction. */
static PyObject *read_timestamp2(Cur *c, const Col *col) {
    static const long pow10[7] = {1, 10, 100, 1000, 10000, 100000, 1000000};
    int fsp = col->a, size = (fsp + 1) / 2;
    if (need(c, 4 + size) < 0) return NULL;
    int64_t t = be_signed(c->p, 4);
    int64_t micro = size ? be_signed(c->p + 4, size) : 0;
    c->p += 4 + size;
    if (fsp % 2) micro /= 10; /* int(micro / 10): both truncate toward zero */
    micro *= pow10[6 - fsp];
    if (micro < 0) micro = 0; /* only a positive fraction replaces the datetime's */
    if (col->fix == F_ZERO_TS && t == 0 && micro == 0) {
        Py_INCREF(col->fix_obj); /* TIMESTAMP cannot hold the epoch itself: the zero date */
        return col->fix_obj;
    }
    if (micro > 999999) {
        PyErr_SetString(PyExc_ValueError, "microsecond must be in 0..999999");
        return NULL;
    }
    return epoch_datetime(t, micro);
}

static PyObject *epoch_datetime(int64_t t, int64_t micro) {
    int64_t days = t / 86400, secs = t % 86400;
    if (secs < 0) {
        secs += 86400;
        days--;
    }
    /* civil_from_days (H. Hinnant), exact like the C library's gmtime */
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int day = (int)(doy - (153 * mp + 2) / 5 + 1), month = (int)(mp < 10 ? mp + 3 : mp - 9);
    int year = (int)(yoe + era * 400 + (month <= 2));
    return PyDateTime_FromDateAndTime(year, month, day, (int)(secs / 3600), (int)(secs / 60 % 60),
                                      (int)(secs % 60), (int)micro);
}

/* binlog_rows._string: a length, the bytes, decoded or kept, padded for BINARY(N). */
static PyObject *read_string(Cur *c, const Col *col, const char *errors) {
    if (need(c, col->a) < 0) return NULL;
    uint64_t n = le(c->p, col->a);
    c->p += col->a;
    if (need(c, (Py_ssize_t)(n > (uint64_t)PY_SSIZE_T_MAX ? PY_SSIZE_T_MAX : n)) < 0) return NULL;
    const char *s = (const char *)c->p;
    c->p += n;
    PyObject *v;
    if (col->b == C_BYTES) {
        v = PyBytes_FromStringAndSize(s, (Py_ssize_t)n);
    } else {
        v = col->b == C_UTF8 ? PyUnicode_DecodeUTF8(s, (Py_ssize_t)n, errors)
                             : PyUnicode_Decode(s, (Py_ssize_t)n, col->codec, errors);
        if (v != NULL && col->fix != F_NONE && PyUnicode_Check(v)) {
            PyObject *b = PyUnicode_AsUTF8String(v); /* _as_bytes: str.encode() */
            Py_DECREF(v);
            v = b;
        }
    }
    if (v == NULL || col->fix != F_PAD || !PyBytes_Check(v) ||
        PyBytes_GET_SIZE(v) >= col->fix_arg)
        return v;
    PyObject *padded = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)col->fix_arg);
    if (padded != NULL) {
        Py_ssize_t len = PyBytes_GET_SIZE(v);
        memcpy(PyBytes_AS_STRING(padded), PyBytes_AS_STRING(v), len);
        memset(PyBytes_AS_STRING(padded) + len, 0, (size_t)(col->fix_arg - len));
    }
    Py_DECREF(v);
    return padded;
}

static PyObject *read_enum(Cur *c, const Col *col) {
    if (need(c, col->a) < 0) return NULL;
    uint64_t i = le(c->p, col->a);
    c->p += col->a;
    if (col->obj == Py_None) Py_RETURN_NONE;
    if (i >= (uint64_t)PyTuple_GET_SIZE(col->obj)) {
        PyErr_SetString(PyExc_IndexError, "list index out of range");
        return NULL;
    }
    PyObject *v = PyTuple_GET_ITEM(col->obj, (Py_ssize_t)i);
    Py_INCREF(v);
    return v;
}

/* binlog_rows K_SET: a little-endian bitmask over the members, joined in declared order */
static PyObject *read_set(Cur *c, const Col *col) {
    if (need(c, col->a) < 0) return NULL;
    uint64_t bits = le(c->p, col->a);
    c->p += col->a;
    PyObject *chosen = PyList_New(0);
    if (chosen == NULL) return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(col->obj);
    for (Py_ssize_t i = 0; i < n && i < 64; i++) {
        if ((bits >> i & 1) && PyList_Append(chosen, PyTuple_GET_ITEM(col->obj, i)) < 0) {
            Py_DECREF(chosen);
            return NULL;
        }
    }
    PyObject *comma = PyUnicode_FromString(",");
    PyObject *v = comma == NULL ? NULL : PyUnicode_Join(comma, chosen);
    Py_XDECREF(comma);
    Py_DECREF(chosen);
    return v;
}

/* binlog_rows K_BIT: the bytes as stored, big-endian, what PyMySQL returns */
static PyObject *read_bit(Cur *c, const Col *col) {
    if (need(c, col->a) < 0) return NULL;
    PyObject *v = PyBytes_FromStringAndSize((const char *)c->p, col->a);
    c->p += col->a;
    return v;
}

static PyObject *read_value(Cur *c, const Col *col, const char *errors) {
    static const int width[] = {0, 1, 1, 2, 2, 3, 3, 4, 4, 8, 8};
    int k = col->kind;
    if (k <= K_UINT64) {
        if (need(c, width[k]) < 0) return NULL;
        uint64_t u = le(c->p, width[k]);
        c->p += width[k];
        switch (k) {
        case K_INT8: return integer((int8_t)u, col);
        case K_INT16: return integer((int16_t)u, col);
        case K_INT24: return integer((int64_t)(u ^ 0x800000) - 0x800000, col);
        case K_INT32: return integer((int32_t)u, col);
        case K_INT64: return integer((int64_t)u, col);
        default: return PyLong_FromUnsignedLongLong(u);
        }
    }
    switch (k) {
    case K_FLOAT: {
        if (need(c, 4) < 0) return NULL;
        double d = PyFloat_Unpack4((const char *)c->p, 1); /* what struct '<f' does */
        c->p += 4;
        return d == -1.0 && PyErr_Occurred() ? NULL : PyFloat_FromDouble(d);
    }
    case K_DOUBLE: {
        if (need(c, 8) < 0) return NULL;
        double d = PyFloat_Unpack8((const char *)c->p, 1);
        c->p += 8;
        return d == -1.0 && PyErr_Occurred() ? NULL : PyFloat_FromDouble(d);
    }
    case K_YEAR: {
        if (need(c, 1) < 0) return NULL;
        long y = *c->p++ + 1900;
        return PyLong_FromLong(col->fix == F_YEAR && y == 1900 ? 0 : y);
    }
    case K_DECIMAL: return read_decimal(c, col);
    case K_DATETIME2: return read_datetime2(c, col);
    case K_DATE: return read_date(c);
    case K_TIME2: return read_time2(c, col);
    case K_TIMESTAMP2: return read_timestamp2(c, col);
    case K_STRING: return read_string(c, col, errors);
    case K_ENUM: return read_enum(c, col);
    case K_SET: return read_set(c, col);
    case K_BIT: return read_bit(c, col);
    case K_DATETIME: return read_old_datetime(c);
    case K_TIME: return read_old_time(c);
    case K_TIMESTAMP: return read_old_timestamp(c, col);
    }
    PyErr_Format(PyExc_ValueError, "unknown column kind %d", k);
    return NULL;
}

/* One image: the null bitmap (every column present), then the non-NULL values. */
static PyObject *read_image(Cur *c, const Plan *plan, const char *errors) {
    Py_ssize_t n = plan->n;
    if (need(c, (n + 7) / 8) < 0) return NULL;
    const unsigned char *nulls = c->p;
    c->p += (n + 7) / 8;
    PyObject *row = PyTuple_New(n);
    if (row == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v;
        if (nulls[i >> 3] & (1 << (i & 7))) {
            v = Py_None;
            Py_INCREF(v);
        } else if ((v = read_value(c, &plan->cols[i], errors)) == NULL) {
            Py_DECREF(row);
            return NULL;
        }
        PyTuple_SET_ITEM(row, i, v);
    }
    return row;
}

static void plan_free(PyObject *capsule) {
    Plan *plan = PyCapsule_GetPointer(capsule, PLAN_NAME);
    if (plan == NULL) return;
    for (Py_ssize_t i = 0; i < plan->n; i++) {
        Py_XDECREF(plan->cols[i].obj);
        Py_XDECREF(plan->cols[i].fix_obj);
    }
    PyMem_Free(plan);
}

static PyObject *make_plan(PyObject *self, PyObject *spec) {
    if (!PyTuple_Check(spec)) {
        PyErr_SetString(PyExc_TypeError, "plan spec must be a tuple");
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(spec);
    Plan *plan = PyMem_Calloc(1, sizeof(Plan) + (size_t)n * sizeof(Col));
    if (plan == NULL) return PyErr_NoMemory();
    PyObject *capsule = PyCapsule_New(plan, PLAN_NAME, plan_free);
    if (capsule == NULL) {
        PyMem_Free(plan);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Col *col = &plan->cols[i];
        PyObject *obj, *fix_obj;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(spec, i), "iiiOiLO", &col->kind, &col->a,
                              &col->b, &obj, &col->fix, &col->fix_arg, &fix_obj))
            goto fail;
        Py_INCREF(obj);
        Py_INCREF(fix_obj);
        col->obj = obj;
        col->fix_obj = fix_obj;
        plan->n = i + 1; /* what plan_free releases */
        int ok = col->kind > 0 && col->kind < K_LAST && col->fix >= 0 && col->fix < F_LAST;
        if (col->kind == K_STRING) {
            ok = ok && col->a >= 1 && col->a <= 4 && col->b >= C_BYTES && col->b <= C_CODEC;
            if (ok && col->b == C_CODEC && (col->codec = PyUnicode_AsUTF8(obj)) == NULL) goto fail;
        }
        if (col->kind == K_DECIMAL) ok = ok && col->a >= 1 && col->a <= 65 && col->b >= 0 &&
                                         col->b <= col->a && col->b <= 38;
        if (col->kind == K_DATETIME2 || col->kind == K_TIME2 || col->kind == K_TIMESTAMP2)
            ok = ok && col->a >= 0 && col->a <= 6;
        if (col->kind == K_ENUM) ok = ok && (col->a == 1 || col->a == 2) &&
                                      (obj == Py_None || PyTuple_Check(obj));
        if (col->kind == K_SET) ok = ok && col->a >= 1 && col->a <= 8 && PyTuple_Check(obj);
        if (col->kind == K_SET && ok)
            for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(obj); j++)
                ok = ok && PyUnicode_Check(PyTuple_GET_ITEM(obj, j));
        if (col->kind == K_BIT) ok = ok && col->a >= 1 && col->a <= 8;
        if (col->fix == F_ZERO_TS) ok = ok && PyUnicode_Check(fix_obj);
        if (col->fix == F_UNSIGNED) ok = ok && col->fix_arg > 0 && col->fix_arg <= 64;
        if (!ok) {
            PyErr_Format(PyExc_ValueError, "bad plan entry for column %zd", i);
            goto fail;
        }
    }
    plan->n = n;
    return capsule;
fail:
    Py_DECREF(capsule);
    return NULL;
}

static PyObject *decode(PyObject *self, PyObject *args) {
    PyObject *capsule;
    Py_buffer buf;
    Py_ssize_t start, end;
    int images;
    const char *errors;
    if (!PyArg_ParseTuple(args, "Oy*nnis", &capsule, &buf, &start, &end, &images, &errors))
        return NULL;
    PyObject *rows = NULL;
    Plan *plan = PyCapsule_GetPointer(capsule, PLAN_NAME);
    if (plan == NULL) goto done;
    if (start < 0 || start > end || end > buf.len || (images != 1 && images != 2)) {
        PyErr_Format(PyExc_ValueError, "bad event body bounds %zd..%zd of %zd bytes", start, end,
                     buf.len);
        goto done;
    }
    const unsigned char *base = (const unsigned char *)buf.buf + start;
    Cur c = {base, (const unsigned char *)buf.buf + end, base};
    if ((rows = PyList_New(0)) == NULL) goto done;
    while (c.p < c.end) {
        PyObject *row = read_image(&c, plan, errors);
        if (row != NULL && images == 2) {
            PyObject *after = read_image(&c, plan, errors);
            PyObject *pair = after == NULL ? NULL : PyTuple_Pack(2, row, after);
            Py_XDECREF(after);
            Py_DECREF(row);
            row = pair;
        }
        if (row == NULL || PyList_Append(rows, row) < 0) {
            Py_XDECREF(row);
            Py_CLEAR(rows);
            goto done;
        }
        Py_DECREF(row);
    }
done:
    PyBuffer_Release(&buf);
    return rows;
}

static PyMethodDef methods[] = {
    {"plan", make_plan, METH_O,
     "plan(spec) -> a decoding plan; spec: per column (kind, a, b, obj, fix, fix_arg, fix_obj)"},
    {"decode", decode, METH_VARARGS,
     "decode(plan, data, start, end, images, errors) -> list of row tuples (images=2: pairs)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_binlog_rows",
                                    "Binlog row images decoded in C.", -1, methods};

PyMODINIT_FUNC PyInit__binlog_rows(void) {
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL) return NULL;
    PyObject *decimal = PyImport_ImportModule("decimal");
    if (decimal == NULL) return NULL;
    Decimal = PyObject_GetAttrString(decimal, "Decimal");
    Py_DECREF(decimal);
    if (Decimal == NULL) return NULL;
    return PyModule_Create(&module);
}
