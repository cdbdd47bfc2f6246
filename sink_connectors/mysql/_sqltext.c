/* A row of values as the SQL text "(v1,v2,...)", in C: the inner loop of a MySQL writer.
 *
 * Rendering each value through PyMySQL's Connection.escape was a third of a writer's time
 * (issue #9). This renders the common types exactly as PyMySQL does and hands every other
 * value to the Python literal function it is given (sink_connectors/mysql/statements.py):
 *
 *   None               NULL
 *   int                decimal digits (str(int))
 *   str                '...' with PyMySQL's escape_string table, or with only ' doubled
 *                      when the session has NO_BACKSLASH_ESCAPES
 *   naive datetime     'YYYY-MM-DD HH:MM:SS[.ffffff]' (datetime.isoformat(' '))
 *   decimal.Decimal    format(value, 'f')
 *
 * Escaping works on the UTF-8 bytes: every byte PyMySQL escapes is ASCII, and UTF-8 never
 * uses ASCII bytes inside a multi-byte character, so the result is the same text.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <stdio.h>
#include <string.h>

#include "sluice_buf.h"

static PyObject *decimal_type; /* decimal.Decimal, set by configure() */
static PyObject *format_f;     /* "f" */

static int put_str_object(Buf *b, PyObject *s) {
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(s, &n);
    return p ? buf_put(b, p, n) : -1;
}

static int put_quoted(Buf *b, PyObject *s, int no_backslash) {
    Py_ssize_t n;
    const unsigned char *p = (const unsigned char *)PyUnicode_AsUTF8AndSize(s, &n);
    if (!p) { /* lone surrogates: PyMySQL's own function deals with them */
        PyErr_Clear();
        return 1;
    }
    if (buf_reserve(b, 2 * n + 2) < 0) return -1; /* every byte escaped at worst */
    char *o = b->data + b->len;
    *o++ = '\'';
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (no_backslash) {
            if (c == '\'') *o++ = '\'';
            *o++ = (char)c;
            continue;
        }
        switch (c) {
        case 0: *o++ = '\\'; *o++ = '0'; break;
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case '\r': *o++ = '\\'; *o++ = 'r'; break;
        case 032: *o++ = '\\'; *o++ = 'Z'; break;
        case '"': *o++ = '\\'; *o++ = '"'; break;
        case '\'': *o++ = '\\'; *o++ = '\''; break;
        default: *o++ = (char)c;
        }
    }
    *o++ = '\'';
    b->len = o - b->data;
    return 0;
}

static int put_value(Buf *b, PyObject *v, PyObject *lit, int no_backslash) {
    char tmp[64];
    if (v == Py_None) return buf_put(b, "NULL", 4);
    if (PyLong_CheckExact(v)) {
        int overflow;
        long long n = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (!overflow && !(n == -1 && PyErr_Occurred()))
            return buf_put(b, tmp, snprintf(tmp, sizeof tmp, "%lld", n));
        PyErr_Clear();
        PyObject *s = PyObject_Str(v);
        if (!s) return -1;
        int r = put_str_object(b, s);
        Py_DECREF(s);
        return r;
    }
    if (PyUnicode_CheckExact(v)) {
        int r = put_quoted(b, v, no_backslash);
        if (r <= 0) return r;
    }
    else if (PyDateTime_CheckExact(v) && PyDateTime_DATE_GET_TZINFO(v) == Py_None) {
        int us = PyDateTime_DATE_GET_MICROSECOND(v);
        int n = snprintf(tmp, sizeof tmp, "'%04d-%02d-%02d %02d:%02d:%02d", PyDateTime_GET_YEAR(v),
                         PyDateTime_GET_MONTH(v), PyDateTime_GET_DAY(v),
                         PyDateTime_DATE_GET_HOUR(v), PyDateTime_DATE_GET_MINUTE(v),
                         PyDateTime_DATE_GET_SECOND(v));
        if (us) n += snprintf(tmp + n, sizeof tmp - n, ".%06d", us);
        tmp[n++] = '\'';
        return buf_put(b, tmp, n);
    }
    PyObject *s;
    if (decimal_type && Py_IS_TYPE(v, (PyTypeObject *)decimal_type))
        s = PyObject_Format(v, format_f);
    else
        s = PyObject_CallOneArg(lit, v);
    if (!s) return -1;
    if (!PyUnicode_Check(s)) {
        Py_DECREF(s);
        PyErr_SetString(PyExc_TypeError, "a literal function returned no str");
        return -1;
    }
    int r = put_str_object(b, s);
    Py_DECREF(s);
    return r;
}

/* row_text(values, index, lit, no_backslash) -> "(v,...)"; index: column positions or None */
static PyObject *row_text(PyObject *self, PyObject *args) {
    PyObject *values, *index, *lit;
    int no_backslash;
    if (!PyArg_ParseTuple(args, "O!OOp", &PyTuple_Type, &values, &index, &lit, &no_backslash))
        return NULL;
    Py_ssize_t n = index == Py_None ? PyTuple_GET_SIZE(values) : PyTuple_Size(index);
    if (n < 0) return NULL;
    Buf b;
    buf_init(&b);
    int r = buf_put(&b, "(", 1);
    for (Py_ssize_t i = 0; r == 0 && i < n; i++) {
        Py_ssize_t at = i;
        if (index != Py_None) {
            at = PyLong_AsSsize_t(PyTuple_GET_ITEM(index, i));
            if (at < 0 || at >= PyTuple_GET_SIZE(values)) {
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_IndexError, "column index out of row");
                r = -1;
                break;
            }
        }
        if (i && buf_put(&b, ",", 1) < 0) r = -1;
        else r = put_value(&b, PyTuple_GET_ITEM(values, at), lit, no_backslash);
    }
    if (r == 0) r = buf_put(&b, ")", 1);
    PyObject *out = r == 0 ? PyUnicode_DecodeUTF8(b.data, b.len, NULL) : NULL;
    buf_free(&b);
    return out;
}

static PyObject *configure(PyObject *self, PyObject *decimal) {
    Py_XSETREF(decimal_type, Py_NewRef(decimal));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"row_text", row_text, METH_VARARGS, "(values, index, lit, no_backslash) -> '(v,...)'"},
    {"configure", configure, METH_O, "configure(decimal.Decimal)"},
    {NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_sqltext",
                                    "C inner loop of a MySQL writer's statements.", -1, methods};

PyMODINIT_FUNC PyInit__sqltext(void) {
    PyDateTime_IMPORT;
    if (!PyDateTimeAPI) return NULL;
    format_f = PyUnicode_InternFromString("f");
    if (!format_f) return NULL;
    return PyModule_Create(&module);
}
