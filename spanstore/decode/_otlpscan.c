/*
 * spanstore.decode._otlpscan: the per-span work of spanstore.decode.prepare.prepare_request, in C.
 *
 * The caller (spanstore/decode/scan.py) has already parsed the request with upb, which
 * validated its structure and every string's UTF-8, and has done the per-resource and
 * per-scope work in Python. This module walks the same serialized bytes again, span by
 * span, and fills Arrow buffers (validity bitmap, int32 offsets, data) for the span,
 * entity and link columns, so that no Python object is made per span except its
 * de-duplication key. The results must equal prepare_request's exactly; where this walk
 * cannot prove it would, it answers with a reason (a str) instead and the caller uses
 * the Python path for the whole request.
 *
 * Protobuf semantics followed here, as upb applies them:
 *   - a field whose wire type does not match its declaration is an unknown field;
 *   - a scalar field that appears several times: the last one wins;
 *   - an embedded message that appears several times is merged (Status: each field
 *     inside, last wins; KeyValue.value: the AnyValue oneof takes the last member set);
 *   - unknown fields are skipped by wire type (0, 1, 2, 5); groups (3, 4) make the
 *     walk decline, as do tags upb would refuse.
 * The input is attacker-controlled: every read is checked against the end of the
 * enclosing message, and a buffer that does not parse makes the walk decline (upb has
 * accepted it, so that should not happen; it must still never read out of bounds).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ outcomes */

typedef enum {
    SCAN_OK = 0,
    SCAN_ERROR,        /* a Python exception is set */
    SCAN_MALFORMED,    /* bytes that do not parse (upb accepted them: should not happen) */
    SCAN_GROUP,        /* a group (wire types 3/4): not walked here */
    SCAN_POLICY,       /* a span the ingest policy might change */
    SCAN_INT_TEXT,     /* an integer column's text value only Python can judge */
    SCAN_TOO_LARGE,    /* a column past Arrow's 2 GiB of int32 offsets */
    SCAN_TOO_DEEP,     /* values nested deeper than this walk follows */
    SCAN_SCOPES,       /* the scope list does not match the request's scopes */
} Outcome;

/* The str handed back to Python for each outcome that is not SCAN_OK / SCAN_ERROR. */
static const char *const OUTCOME_REASON[] = {
    [SCAN_MALFORMED] = "malformed",
    [SCAN_GROUP] = "group",
    [SCAN_POLICY] = "policy",
    [SCAN_INT_TEXT] = "int-column text",
    [SCAN_TOO_LARGE] = "too large",
    [SCAN_TOO_DEEP] = "too deep",
    [SCAN_SCOPES] = "scopes",
};

#define TRY(expr)                      \
    do {                               \
        Outcome try_outcome_ = (expr); \
        if (try_outcome_ != SCAN_OK)   \
            return try_outcome_;       \
    } while (0)

/* Steps cursor `c` to its next field, in `f`: returns a malformed field's outcome from the
 * function, and leaves the enclosing loop at the end of the message. */
#define NEXT_FIELD_OR_BREAK(c, f)    \
    TRY(next_field(&(c), &(f)));     \
    if ((f).number == 0)             \
    break

/* `FOR_EACH_FIELD(c, f, message) { ... }`: declares cursor `c` over `message` and field
 * `f`, and runs the block for each field in turn (`break` and `continue` as in any loop);
 * a malformed field's outcome is returned from the function, as NEXT_FIELD_OR_BREAK does. */
#define FOR_EACH_FIELD(c, f, message)                                               \
    Cursor c = cursor_of(message);                                                  \
    Field f;                                                                        \
    for (Outcome c##_step_; (c##_step_ = next_field(&(c), &(f))) != SCAN_OK || (f).number != 0;) \
        if (c##_step_ != SCAN_OK)                                                   \
            return c##_step_;                                                       \
        else

/* ------------------------------------------------------------------ wire format */

static const uint8_t EMPTY[1] = {0};

typedef struct {
    const uint8_t *ptr; /* never NULL: EMPTY when len == 0 and nothing was read */
    size_t len;
} Slice;

static const Slice NO_SLICE = {EMPTY, 0};

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} Cursor;

static Cursor
cursor_of(Slice s)
{
    Cursor c = {s.ptr, s.ptr + s.len};
    return c;
}

enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

typedef struct {
    uint32_t number; /* 0: the message ended */
    int wire_type;
    const uint8_t *start; /* the tag's first byte */
    uint64_t value;       /* wire types 0, 1, 5 */
    Slice data;           /* wire type 2 */
} Field;

/* A varint of at most 10 bytes; bits past 64 are dropped, as upb drops them. */
static int
read_varint(Cursor *c, uint64_t *out)
{
    uint64_t value = 0;
    for (int i = 0; i < 10; i++) {
        if (c->p >= c->end)
            return 0;
        uint8_t byte = *c->p++;
        value |= (uint64_t)(byte & 0x7f) << (7 * i);
        if (!(byte & 0x80)) {
            *out = value;
            return 1;
        }
    }
    return 0;
}

/* A little-endian integer of `bytes` (at most 8) bytes; the host is little-endian
 * (checked at import), so this is one load. */
static inline uint64_t
load_le(const uint8_t *p, size_t bytes)
{
    uint64_t value = 0;
    memcpy(&value, p, bytes);
    return value;
}

/* upb reads a tag as at most 5 bytes holding a 32-bit value. */
static int
read_tag(Cursor *c, uint64_t *out)
{
    uint64_t tag = 0;
    for (int i = 0;; i++) {
        if (i == 5 || c->p >= c->end)
            return 0;
        uint8_t byte = *c->p++;
        tag |= (uint64_t)(byte & 0x7f) << (7 * i);
        if (!(byte & 0x80))
            break;
    }
    *out = tag;
    return tag <= UINT32_MAX;
}

/* The next field of the message under `c`; f->number == 0 at its end. Most tags and
 * lengths are one byte: those skip the general varint loops. */
static inline Outcome
next_field(Cursor *c, Field *f)
{
    f->number = 0;
    f->value = 0;
    if (c->p >= c->end)
        return SCAN_OK;
    f->start = c->p;
    uint64_t tag;
    if (*c->p < 0x80)
        tag = *c->p++;
    else if (!read_tag(c, &tag))
        return SCAN_MALFORMED;
    if ((tag >> 3) == 0) /* field 0 is invalid */
        return SCAN_MALFORMED;
    f->wire_type = (int)(tag & 7);
    switch (f->wire_type) {
    case WIRE_VARINT:
        if (c->p < c->end && *c->p < 0x80)
            f->value = *c->p++;
        else if (!read_varint(c, &f->value))
            return SCAN_MALFORMED;
        break;
    case WIRE_FIXED64:
    case WIRE_FIXED32: {
        size_t width = f->wire_type == WIRE_FIXED64 ? 8 : 4;
        if ((size_t)(c->end - c->p) < width)
            return SCAN_MALFORMED;
        f->value = width == 8 ? load_le(c->p, 8) : load_le(c->p, 4);
        c->p += width;
        break;
    }
    case WIRE_LEN: {
        uint64_t len;
        if (c->p < c->end && *c->p < 0x80)
            len = *c->p++;
        else if (!read_varint(c, &len))
            return SCAN_MALFORMED;
        if (len > (uint64_t)(c->end - c->p))
            return SCAN_MALFORMED;
        f->data.ptr = len ? c->p : EMPTY;
        f->data.len = (size_t)len;
        c->p += len;
        break;
    }
    case 3:
    case 4:
        return SCAN_GROUP;
    default:
        return SCAN_MALFORMED;
    }
    f->number = (uint32_t)(tag >> 3);
    return SCAN_OK;
}

static int
is_len(const Field *f, uint32_t number)
{
    return f->number == number && f->wire_type == WIRE_LEN;
}

static int
slice_is(Slice s, const char *text)
{
    size_t n = strlen(text);
    return s.len == n && memcmp(s.ptr, text, n) == 0;
}

/* ------------------------------------------------------------------ output buffers */

/* A growable byte buffer kept in a bytes object, which becomes the column's Arrow
 * buffer as it is (shrunk to fit, not copied). */
typedef struct {
    PyObject *bytes; /* NULL until the first reserve */
    char *ptr;
    size_t len;
    size_t cap;
} Buf;

static Outcome
buf_grow(Buf *b, size_t extra)
{
    size_t want = b->cap ? b->cap : 256;
    while (want - b->len < extra) {
        if (want > (size_t)PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            return SCAN_ERROR;
        }
        want *= 2;
    }
    if (b->bytes == NULL) {
        b->bytes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)want);
        if (b->bytes == NULL)
            return SCAN_ERROR;
    }
    else if (_PyBytes_Resize(&b->bytes, (Py_ssize_t)want) < 0) {
        return SCAN_ERROR; /* b->bytes is NULL now */
    }
    b->ptr = PyBytes_AS_STRING(b->bytes);
    b->cap = want;
    return SCAN_OK;
}

static inline Outcome
buf_reserve(Buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return SCAN_OK;
    return buf_grow(b, extra);
}

static inline Outcome
buf_append(Buf *b, const void *data, size_t n)
{
    TRY(buf_reserve(b, n));
    if (n)
        memcpy(b->ptr + b->len, data, n);
    b->len += n;
    return SCAN_OK;
}

/* The buffer's bytes object, sized to its content (a new reference); the Buf is empty
 * after. */
static PyObject *
buf_take(Buf *b)
{
    PyObject *bytes = b->bytes;
    if (bytes == NULL)
        return PyBytes_FromStringAndSize("", 0);
    b->bytes = NULL;
    if (_PyBytes_Resize(&bytes, (Py_ssize_t)b->len) < 0)
        return NULL;
    b->ptr = NULL;
    b->len = b->cap = 0;
    return bytes;
}

static void
buf_free(Buf *b)
{
    Py_CLEAR(b->bytes);
    b->ptr = NULL;
    b->len = b->cap = 0;
}

/* One Arrow column: fixed width (`width` bytes per value) or variable width (binary
 * and string: int32 offsets into `data`). */
typedef struct {
    Buf data;
    Buf offsets;
    Buf validity; /* LSB-first bitmap, as Arrow wants it; only once there is a null */
    Py_ssize_t rows;
    Py_ssize_t nulls;
    int width; /* 0: variable width */
} Column;

static Outcome
column_init(Column *c, int width)
{
    memset(c, 0, sizeof(*c));
    c->width = width;
    if (width == 0) {
        int32_t zero = 0;
        return buf_append(&c->offsets, &zero, sizeof(zero));
    }
    return SCAN_OK;
}

static void
column_free(Column *c)
{
    buf_free(&c->data);
    buf_free(&c->offsets);
    buf_free(&c->validity);
}

/* Counts a value, valid or null. Arrow needs no bitmap for a column without nulls, so
 * one is started (all ones so far) at a column's first null. */
static Outcome
column_mark_null(Column *c)
{
    if (c->nulls == 0) {
        size_t full = (size_t)c->rows / 8;
        TRY(buf_reserve(&c->validity, full + 1));
        memset(c->validity.ptr, 0xff, full);
        c->validity.len = full;
        if (c->rows % 8)
            c->validity.ptr[c->validity.len++] = (char)((1u << (c->rows % 8)) - 1);
    }
    if (c->rows % 8 == 0) {
        uint8_t zero = 0;
        TRY(buf_append(&c->validity, &zero, 1));
    }
    c->nulls++;
    c->rows++;
    return SCAN_OK;
}

static inline Outcome
column_mark(Column *c, int valid)
{
    if (!valid)
        return column_mark_null(c);
    if (c->nulls) {
        if (c->rows % 8 == 0) {
            uint8_t zero = 0;
            TRY(buf_append(&c->validity, &zero, 1));
        }
        c->validity.ptr[c->rows / 8] |= (char)(1u << (c->rows % 8));
    }
    c->rows++;
    return SCAN_OK;
}

/* Closes a variable-width value whose bytes were appended to c->data. */
static inline Outcome
column_end_value(Column *c, int valid)
{
    if (c->data.len > INT32_MAX)
        return SCAN_TOO_LARGE;
    int32_t offset = (int32_t)c->data.len;
    TRY(buf_append(&c->offsets, &offset, sizeof(offset)));
    return column_mark(c, valid);
}

static inline Outcome
column_bytes(Column *c, const void *data, size_t n)
{
    TRY(buf_append(&c->data, data, n));
    return column_end_value(c, 1);
}

static inline Outcome
column_slice(Column *c, Slice s)
{
    return column_bytes(c, s.ptr, s.len);
}

static inline Outcome
column_null(Column *c)
{
    if (c->width == 0)
        return column_end_value(c, 0);
    TRY(buf_reserve(&c->data, (size_t)c->width));
    memset(c->data.ptr + c->data.len, 0, (size_t)c->width);
    c->data.len += (size_t)c->width;
    return column_mark(c, 0);
}

/* A fixed-width little-endian value (uint8, int64, uint64: the host is little-endian,
 * as Arrow's buffers are; checked at import). */
static inline Outcome
column_fixed(Column *c, uint64_t value)
{
    TRY(buf_append(&c->data, &value, (size_t)c->width));
    return column_mark(c, 1);
}

/* (null_count, validity or None[, offsets], data): the buffers pa.Array.from_buffers
 * takes, in its order. */
static PyObject *
column_object(Column *c)
{
    PyObject *validity;
    if (c->nulls) {
        validity = buf_take(&c->validity);
        if (validity == NULL)
            return NULL;
    }
    else {
        validity = Py_NewRef(Py_None);
    }
    PyObject *data = buf_take(&c->data);
    if (data == NULL) {
        Py_DECREF(validity);
        return NULL;
    }
    if (c->width)
        return Py_BuildValue("(nNN)", c->nulls, validity, data);
    PyObject *offsets = buf_take(&c->offsets);
    if (offsets == NULL) {
        Py_DECREF(validity);
        Py_DECREF(data);
        return NULL;
    }
    return Py_BuildValue("(nNNN)", c->nulls, validity, offsets, data);
}

/* ------------------------------------------------------------------ key table */

/* What KeyClassifier.classify says about a key, as the Python side encodes it:
 * KEY_PLAIN (not indexed), KEY_ENTITY, or column << 8 | rank for a semantic column. */
enum { KEY_PLAIN = -1, KEY_ENTITY = -2 };

typedef struct {
    char *key; /* NULL: a free slot */
    size_t len;
    uint64_t hash;
    long code;
} Entry;

/* Attribute key -> classification, keyed by the key's UTF-8 bytes, so that looking a
 * key up costs no Python object. Misses ask the Python classifier (passed per scan),
 * which keeps its own cache as before. Bounded like KeyClassifier's cache: unbounded
 * key cardinality must not grow memory. */
typedef struct {
    PyObject_HEAD
    Entry *slots;
    size_t capacity; /* a power of two, or 0 before the first key */
    size_t used;
    size_t limit;
    int n_string; /* semantic string columns */
    int n_int;    /* semantic int64 columns, after the string ones */
} KeyTable;

static uint64_t
hash_key(Slice key)
{
    /* Python's own (seeded) bytes hash: keys are attacker-chosen, a fixed hash would let
     * a sender make every key collide. */
#if PY_VERSION_HEX >= 0x030E0000
    return (uint64_t)Py_HashBuffer(key.ptr, (Py_ssize_t)key.len);
#else
    return (uint64_t)_Py_HashBytes(key.ptr, (Py_ssize_t)key.len);
#endif
}

static void
table_clear(KeyTable *t)
{
    for (size_t i = 0; i < t->capacity; i++) {
        PyMem_Free(t->slots[i].key);
        t->slots[i].key = NULL;
    }
    t->used = 0;
}

static Entry *
table_find(KeyTable *t, Slice key, uint64_t hash)
{
    size_t mask = t->capacity - 1;
    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        Entry *e = &t->slots[i];
        if (e->key == NULL)
            return e;
        if (e->hash == hash && e->len == key.len && memcmp(e->key, key.ptr, key.len) == 0)
            return e;
    }
}

static int
table_grow(KeyTable *t)
{
    size_t capacity = t->capacity ? t->capacity * 2 : 256;
    Entry *slots = PyMem_Calloc(capacity, sizeof(Entry));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Entry *old = t->slots;
    size_t old_capacity = t->capacity;
    t->slots = slots;
    t->capacity = capacity;
    for (size_t i = 0; i < old_capacity; i++) {
        if (old[i].key) {
            Slice key = {(const uint8_t *)old[i].key, old[i].len};
            *table_find(t, key, old[i].hash) = old[i];
        }
    }
    PyMem_Free(old);
    return 0;
}

static int
table_insert(KeyTable *t, Slice key, uint64_t hash, long code)
{
    if (t->used >= t->limit)
        table_clear(t);
    if ((t->used + 1) * 2 > t->capacity && table_grow(t) < 0)
        return -1;
    Entry *e = table_find(t, key, hash);
    if (e->key == NULL) {
        e->key = PyMem_Malloc(key.len ? key.len : 1);
        if (e->key == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(e->key, key.ptr, key.len);
        e->len = key.len;
        e->hash = hash;
        t->used++;
    }
    e->code = code;
    return 0;
}

static Outcome
key_code(KeyTable *t, PyObject *classify, Slice key, long *code)
{
    uint64_t hash = hash_key(key);
    if (t->capacity) {
        Entry *e = table_find(t, key, hash);
        if (e->key) {
            *code = e->code;
            return SCAN_OK;
        }
    }
    PyObject *text = PyUnicode_DecodeUTF8((const char *)key.ptr, (Py_ssize_t)key.len, NULL);
    if (text == NULL) {
        /* upb has checked every key's UTF-8; decline rather than fail differently */
        PyErr_Clear();
        return SCAN_MALFORMED;
    }
    PyObject *answer = PyObject_CallOneArg(classify, text);
    Py_DECREF(text);
    if (answer == NULL)
        return SCAN_ERROR;
    long value = PyLong_AsLong(answer);
    Py_DECREF(answer);
    if (value == -1 && PyErr_Occurred())
        return SCAN_ERROR;
    if (value < KEY_ENTITY || (value >= 0 && (value >> 8) >= t->n_string + t->n_int)) {
        PyErr_Format(PyExc_ValueError, "classify returned %ld, not a key code", value);
        return SCAN_ERROR;
    }
    if (table_insert(t, key, hash, value) < 0)
        return SCAN_ERROR;
    *code = value;
    return SCAN_OK;
}

static int
KeyTable_init(KeyTable *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"n_string", "n_int", "limit", NULL};
    int n_string, n_int;
    Py_ssize_t limit;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "iin", names, &n_string, &n_int, &limit))
        return -1;
    if (n_string < 0 || n_int < 0 || n_string + n_int > 64 || limit < 1) {
        PyErr_SetString(PyExc_ValueError, "0-64 semantic columns and a positive limit");
        return -1;
    }
    table_clear(self);
    self->n_string = n_string;
    self->n_int = n_int;
    self->limit = (size_t)limit;
    return 0;
}

static void
KeyTable_dealloc(KeyTable *self)
{
    table_clear(self);
    PyMem_Free(self->slots);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t
KeyTable_len(KeyTable *self)
{
    return (Py_ssize_t)self->used;
}

static PyObject *
KeyTable_clear(KeyTable *self, PyObject *Py_UNUSED(ignored))
{
    table_clear(self);
    Py_RETURN_NONE;
}

static PyMethodDef KeyTable_methods[] = {
    {"clear", (PyCFunction)KeyTable_clear, METH_NOARGS, "Forget every key."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods KeyTable_as_sequence = {
    .sq_length = (lenfunc)KeyTable_len,
};

static PyTypeObject KeyTableType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "spanstore.decode._otlpscan.KeyTable",
    .tp_doc = PyDoc_STR("KeyTable(n_string, n_int, limit): attribute key -> key code, "
                        "a cache in front of a classifier."),
    .tp_basicsize = sizeof(KeyTable),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)KeyTable_init,
    .tp_dealloc = (destructor)KeyTable_dealloc,
    .tp_methods = KeyTable_methods,
    .tp_as_sequence = &KeyTable_as_sequence,
};

/* ------------------------------------------------------------------ scan state */

/* Span columns in ingest.SPAN_COLUMNS order: these, then the semantic string and int
 * columns, then raw. */
enum {
    COL_TRACE_ID,
    COL_SPAN_ID,
    COL_PARENT,
    COL_RESOURCE_ID,
    COL_SCOPE_ID,
    COL_SERVICE,
    COL_NAME,
    COL_KIND,
    COL_START,
    COL_DURATION,
    COL_STATUS_CODE,
    COL_STATUS_MESSAGE,
    COL_EXCEPTION_TYPE,
    COL_EXCEPTION_MESSAGE,
    COL_SEMANTIC /* the first semantic column */
};
static const char *const SPAN_PREFIX_NAMES[COL_SEMANTIC] = {
    "trace_id", "span_id", "parent_span_id", "resource_id", "scope_id",
    "service_name", "name", "kind", "start_unix_nano", "duration_ns",
    "status_code", "status_message", "exception_type", "exception_message",
};
static const int SPAN_PREFIX_WIDTHS[COL_SEMANTIC] = {0, 0, 0, 8, 8, 0, 0, 1, 8, 8, 1, 0, 0, 0};

enum { ENT_KEY, ENT_VALUE, ENT_TRACE_ID, ENT_SPAN_ID, ENT_SERVICE, ENT_START, ENT_COLUMNS };
static const char *const ENTITY_NAMES[ENT_COLUMNS] = {
    "key", "value", "trace_id", "span_id", "service_name", "start_unix_nano",
};
static const int ENTITY_WIDTHS[ENT_COLUMNS] = {0, 0, 0, 0, 0, 8};

enum { LNK_TRACE_ID, LNK_SPAN_ID, LNK_LINKED_TRACE_ID, LNK_LINKED_SPAN_ID, LNK_START, LNK_COLUMNS };
static const char *const LINK_NAMES[LNK_COLUMNS] = {
    "trace_id", "span_id", "linked_trace_id", "linked_span_id", "start_unix_nano",
};
static const int LINK_WIDTHS[LNK_COLUMNS] = {0, 0, 0, 0, 8};

#define MAX_REJECT_MESSAGES 5
/* Nested values deeper than this are left to Python (upb's own limit is 100 messages). */
#define MAX_WALK_DEPTH 64

enum {
    ANY_NONE = 0,
    ANY_STRING = 1,
    ANY_BOOL = 2,
    ANY_INT = 3,
    ANY_DOUBLE = 4,
    ANY_ARRAY = 5,
    ANY_KVLIST = 6,
    ANY_BYTES = 7,
    ANY_STRINDEX = 8,
};

/* An AnyValue after upb's merge: the oneof member set last, and its value. */
typedef struct {
    int kind;     /* ANY_*, the AnyValue field number of the member */
    Slice bytes;  /* string_value, bytes_value */
    uint64_t bits; /* bool_value, int_value, double_value (its IEEE bits) */
} Value;

typedef struct {
    Slice key;
    Value value;
} Attribute;

typedef struct {
    Slice trace_id, span_id;
} LinkIds;

typedef struct {
    Slice trace_id, span_id, parent, name, status_message;
    int32_t kind, status_code;
    uint64_t start, end;
} SpanFields;

/* One semantic column's value for the span being emitted (ingest.py's `sparse` and
 * `ranks`). */
typedef struct {
    int set;  /* `row in values_of_column`: true even for a NULL value */
    int rank; /* `ranks[(row, column)]`: recorded only when non-zero */
    Value value;    /* string columns */
    int64_t number; /* int columns */
} Slot;

typedef struct {
    uint64_t resource_id, scope_id;
    Slice service;
    Py_ssize_t first_entity, n_entities; /* into Scan.resource_entities */
} ScopeRow;

typedef struct {
    Slice key, value;
} TextPair;

/* A small direct-mapped cache in front of the key table, for one request: the few
 * keys a request repeats span after span are found by a cheap hash and one compare,
 * without Python's (seeded, slower) hash. A collision only costs a table lookup.
 * `key` points into the request's bytes. */
typedef struct {
    Slice key;
    long code;
    int known;
} KeyMemo;
#define KEY_MEMOS 256

static inline size_t
memo_slot(Slice key)
{
    uint64_t head, tail = 0;
    if (key.len >= 8) {
        head = load_le(key.ptr, 8);
        tail = load_le(key.ptr + key.len - 8, 8);
    }
    else {
        head = load_le(key.ptr, key.len);
    }
    uint64_t h = key.len ^ (head * 0x9E3779B97F4A7C15ull) ^ (tail * 0xC2B2AE3D27D4EB4Full);
    return (size_t)((h ^ (h >> 32)) & (KEY_MEMOS - 1));
}

#define SCRATCH(type, name) \
    type *name;             \
    size_t n_##name, cap_##name

typedef struct {
    /* inputs */
    KeyTable *table;
    PyObject *classify;
    int limited; /* an ingest policy with these limits is in force */
    uint64_t max_attributes, max_value_bytes, max_depth;
    ScopeRow *scopes;
    Py_ssize_t n_scopes, next_scope;
    TextPair *resource_entities;
    int n_semantic;

    /* outputs */
    Column *spans; /* COL_SEMANTIC + n_semantic + 1 (raw) */
    Column entities[ENT_COLUMNS];
    Column links[LNK_COLUMNS];
    PyObject *span_keys; /* list[bytes] */
    PyObject *seen;      /* set[bytes] */
    PyObject *samples;   /* list of (name, len trace_id, len span_id, len parent) */
    Py_ssize_t rejected, duplicates;
    int64_t min_start, max_start;

    /* per-span scratch, reused */
    SCRATCH(Attribute, attrs);
    SCRATCH(Slice, events);
    SCRATCH(LinkIds, link_ids);
    SCRATCH(Slice, strip); /* byte ranges of fields 1, 2 and 4, left out of raw */
    Slot *slots;
    KeyMemo memos[KEY_MEMOS];
} Scan;

/* Appends one element to a scratch array, growing it; returns NULL on no memory. */
#define SCRATCH_PUSH(scan, name)                                                     \
    ((scan)->n_##name < (scan)->cap_##name ||                                        \
             scratch_grow((void **)&(scan)->name, &(scan)->cap_##name,               \
                          sizeof(*(scan)->name)) == 0                                \
         ? &(scan)->name[(scan)->n_##name++]                                         \
         : NULL)

/* The next slot of scratch array `name` in `slot`; out of memory, SCAN_ERROR is returned
 * from the function. */
#define PUSH_OR_RETURN(slot, scan, name)             \
    if (((slot) = SCRATCH_PUSH(scan, name)) == NULL) \
    return SCAN_ERROR

static int
scratch_grow(void **array, size_t *cap, size_t size)
{
    size_t want = *cap ? *cap * 2 : 16;
    void *grown = PyMem_Realloc(*array, want * size);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *array = grown;
    *cap = want;
    return 0;
}

static Py_ssize_t
span_column_count(const Scan *s)
{
    return COL_SEMANTIC + s->n_semantic + 1;
}

/* ------------------------------------------------------------------ values */

static Outcome merge_value(Scan *s, Slice message, Value *v, uint64_t depth);

/* A nested array or map value at `depth` (a span's attribute value is depth 1): the
 * policy flattens one deeper than max_depth, so such a span is left to Python. Every
 * occurrence counts, even one a later oneof member replaces: an upper bound is enough. */
static Outcome
check_nested(Scan *s, Slice content, int kind, uint64_t depth)
{
    if (depth > s->max_depth)
        return SCAN_POLICY;
    if (depth >= MAX_WALK_DEPTH)
        return SCAN_TOO_DEEP;
    FOR_EACH_FIELD(c, f, content) {
        if (!is_len(&f, 1))
            continue;
        Value ignored = {ANY_NONE, NO_SLICE, 0};
        if (kind == ANY_ARRAY) {
            TRY(merge_value(s, f.data, &ignored, depth + 1)); /* ArrayValue.values */
            continue;
        }
        FOR_EACH_FIELD(kv, g, f.data) { /* KeyValueList.values: KeyValue */
            if (is_len(&g, 2))
                TRY(merge_value(s, g.data, &ignored, depth + 1));
        }
    }
    return SCAN_OK;
}

/* The wire type AnyValue's member `number` is sent in (-1: no such member). */
static inline int
value_wire_type(uint32_t number)
{
    switch (number) {
    case ANY_STRING:
    case ANY_BYTES:
    case ANY_ARRAY:
    case ANY_KVLIST:
        return WIRE_LEN;
    case ANY_BOOL:
    case ANY_INT:
    case ANY_STRINDEX:
        return WIRE_VARINT;
    case ANY_DOUBLE:
        return WIRE_FIXED64;
    default:
        return -1;
    }
}

/* Merges one serialized AnyValue into *v, as upb merges repeated occurrences. */
static Outcome
merge_value(Scan *s, Slice message, Value *v, uint64_t depth)
{
    FOR_EACH_FIELD(c, f, message) {
        if (f.wire_type != value_wire_type(f.number))
            continue; /* not a member of the oneof, or not as it is sent */
        v->kind = (int)f.number;
        if (f.number == ANY_ARRAY || f.number == ANY_KVLIST) {
            if (s->limited)
                TRY(check_nested(s, f.data, v->kind, depth));
        } else if (f.wire_type == WIRE_LEN) {
            v->bytes = f.data;
        } else {
            v->bits = f.value;
        }
    }
    return SCAN_OK;
}

static Outcome
read_attribute(Scan *s, Slice message, Attribute *a)
{
    a->key = NO_SLICE;
    a->value.kind = ANY_NONE;
    a->value.bytes = NO_SLICE;
    a->value.bits = 0;
    FOR_EACH_FIELD(c, f, message) {
        if (is_len(&f, 1))
            a->key = f.data;
        else if (is_len(&f, 2))
            TRY(merge_value(s, f.data, &a->value, 1));
    }
    return SCAN_OK;
}

/* The attributes (field `number`) of an event or link, counted and, under a policy,
 * checked for nesting; for the policy's per-owner attribute limit. */
static Outcome
check_owner_attributes(Scan *s, Slice message, uint32_t number)
{
    uint64_t count = 0;
    FOR_EACH_FIELD(c, f, message) {
        if (is_len(&f, number)) {
            Attribute ignored;
            TRY(read_attribute(s, f.data, &ignored));
            count++;
        }
    }
    return count > s->max_attributes ? SCAN_POLICY : SCAN_OK;
}

/* `attr_value.string_value or _scalar_text(attr_value)` (ingest.py): 0 when None. */
static int
value_has_text(const Value *v)
{
    switch (v->kind) {
    case ANY_STRING:
    case ANY_BOOL:
    case ANY_INT:
    case ANY_DOUBLE:
    case ANY_BYTES:
        return 1;
    default:
        return 0;
    }
}

/* Whether that text is non-empty (`if text:`). */
static int
value_has_nonempty_text(const Value *v)
{
    if (v->kind == ANY_STRING || v->kind == ANY_BYTES)
        return v->bytes.len > 0;
    return value_has_text(v);
}

/* Appends that text (or NULL) as one value of a string column. */
static Outcome
column_value_text(Column *c, const Value *v)
{
    char small[32];
    switch (v->kind) {
    case ANY_STRING:
        return column_slice(c, v->bytes);
    case ANY_BOOL:
        return v->bits ? column_bytes(c, "true", 4) : column_bytes(c, "false", 5);
    case ANY_INT: {
        int n = snprintf(small, sizeof(small), "%" PRId64, (int64_t)v->bits);
        return column_bytes(c, small, (size_t)n);
    }
    case ANY_DOUBLE: {
        /* repr(float): what float.__repr__ calls */
        double d;
        memcpy(&d, &v->bits, sizeof(d));
        char *text = PyOS_double_to_string(d, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
        if (text == NULL)
            return SCAN_ERROR;
        Outcome o = column_bytes(c, text, strlen(text));
        PyMem_Free(text);
        return o;
    }
    case ANY_BYTES: {
        static const char hex[] = "0123456789abcdef";
        TRY(buf_reserve(&c->data, 2 * v->bytes.len));
        char *out = c->data.ptr + c->data.len;
        for (size_t i = 0; i < v->bytes.len; i++) {
            out[2 * i] = hex[v->bytes.ptr[i] >> 4];
            out[2 * i + 1] = hex[v->bytes.ptr[i] & 15];
        }
        c->data.len += 2 * v->bytes.len;
        return column_end_value(c, 1);
    }
    default:
        return column_null(c);
    }
}

/* An int column's value: int_value, or a string of digits (`str.isdigit()` then
 * `int()`). Text that only Python can judge (non-ASCII digits, past int64) declines. */
static Outcome
int_column_value(const Value *v, int64_t *out)
{
    int64_t number = v->kind == ANY_INT ? (int64_t)v->bits : 0;
    *out = number;
    if (number != 0 || v->kind != ANY_STRING || v->bytes.len == 0)
        return SCAN_OK;
    int non_ascii = 0;
    for (size_t i = 0; i < v->bytes.len; i++) {
        uint8_t ch = v->bytes.ptr[i];
        if (ch >= 0x80)
            non_ascii = 1;
        else if (ch < '0' || ch > '9')
            return SCAN_OK; /* an ASCII non-digit: isdigit() is False whatever else */
    }
    if (non_ascii)
        return SCAN_INT_TEXT;
    uint64_t parsed = 0;
    for (size_t i = 0; i < v->bytes.len; i++) {
        uint64_t digit_value = (uint64_t)(v->bytes.ptr[i] - '0');
        if (parsed > ((uint64_t)INT64_MAX - digit_value) / 10)
            return SCAN_INT_TEXT; /* Python's int would not fit the int64 column either */
        parsed = parsed * 10 + digit_value;
    }
    *out = (int64_t)parsed;
    return SCAN_OK;
}

/* ------------------------------------------------------------------ spans */

/* A span's attributes (field 9), events (11) and links (13): kept in the scan's scratch
 * arrays for the span's rows (events are read again by read_exception when the span
 * failed); under a policy, an event's or link's attributes are counted. */
static Outcome
keep_repeated(Scan *s, uint32_t number, Slice message)
{
    if (number == 9) {
        Attribute *a;
        PUSH_OR_RETURN(a, s, attrs);
        return read_attribute(s, message, a);
    }
    if (number == 11) {
        Slice *event;
        PUSH_OR_RETURN(event, s, events);
        *event = message;
        return s->limited ? check_owner_attributes(s, message, 3) : SCAN_OK;
    }
    LinkIds *link;
    PUSH_OR_RETURN(link, s, link_ids);
    link->trace_id = link->span_id = NO_SLICE;
    FOR_EACH_FIELD(c, f, message) {
        if (is_len(&f, 1))
            link->trace_id = f.data;
        else if (is_len(&f, 2))
            link->span_id = f.data;
    }
    return s->limited ? check_owner_attributes(s, message, 4) : SCAN_OK;
}

/* The first pass over a span: its scalar fields (last occurrence wins), its attributes,
 * events and links into the scratch arrays, and the policy's limits. */
static Outcome
read_span(Scan *s, Slice span, SpanFields *sp)
{
    sp->trace_id = sp->span_id = sp->parent = sp->name = sp->status_message = NO_SLICE;
    sp->kind = sp->status_code = 0;
    sp->start = sp->end = 0;
    s->n_attrs = s->n_events = s->n_link_ids = s->n_strip = 0;
    if (s->limited && span.len > s->max_value_bytes)
        return SCAN_POLICY; /* a value inside might be cut */
    FOR_EACH_FIELD(c, f, span) {
        switch (f.number) {
        case 1: /* trace_id */
        case 2: /* span_id */
        case 4: { /* parent_span_id */
            if (f.wire_type != WIRE_LEN)
                break;
            if (f.number == 1)
                sp->trace_id = f.data;
            else if (f.number == 2)
                sp->span_id = f.data;
            else
                sp->parent = f.data;
            Slice *strip;
            PUSH_OR_RETURN(strip, s, strip);
            strip->ptr = f.start;
            strip->len = (size_t)(c.p - f.start);
            break;
        }
        case 5:
            if (f.wire_type == WIRE_LEN)
                sp->name = f.data;
            break;
        case 6: /* an int32 enum: the varint's low 32 bits */
            if (f.wire_type == WIRE_VARINT)
                sp->kind = (int32_t)(uint32_t)f.value;
            break;
        case 7:
            if (f.wire_type == WIRE_FIXED64)
                sp->start = f.value;
            break;
        case 8:
            if (f.wire_type == WIRE_FIXED64)
                sp->end = f.value;
            break;
        case 9: /* attributes */
        case 11: /* events */
        case 13: /* links */
            if (f.wire_type == WIRE_LEN)
                TRY(keep_repeated(s, f.number, f.data));
            break;
        case 15: { /* status: merged, each field last wins */
            if (f.wire_type != WIRE_LEN)
                break;
            FOR_EACH_FIELD(sc, g, f.data) {
                if (is_len(&g, 2))
                    sp->status_message = g.data;
                else if (g.number == 3 && g.wire_type == WIRE_VARINT)
                    sp->status_code = (int32_t)(uint32_t)g.value;
            }
            break;
        }
        default:
            break;
        }
    }
    if (s->limited && s->n_attrs > s->max_attributes)
        return SCAN_POLICY;
    return SCAN_OK;
}

static int
is_zero(Slice s)
{
    for (size_t i = 0; i < s.len; i++)
        if (s.ptr[i])
            return 0;
    return 1;
}

static Outcome
reject_span(Scan *s, const SpanFields *sp)
{
    s->rejected++;
    if (PyList_GET_SIZE(s->samples) >= MAX_REJECT_MESSAGES)
        return SCAN_OK;
    PyObject *name = PyUnicode_DecodeUTF8((const char *)sp->name.ptr,
                                          (Py_ssize_t)sp->name.len, NULL);
    if (name == NULL) {
        PyErr_Clear(); /* upb checked it; decline rather than fail differently */
        return SCAN_MALFORMED;
    }
    PyObject *sample = Py_BuildValue("(Nnnn)", name, (Py_ssize_t)sp->trace_id.len,
                                     (Py_ssize_t)sp->span_id.len, (Py_ssize_t)sp->parent.len);
    if (sample == NULL)
        return SCAN_ERROR;
    int failed = PyList_Append(s->samples, sample);
    Py_DECREF(sample);
    return failed ? SCAN_ERROR : SCAN_OK;
}

/* Whether the span is new to this request; records its key. 0: a duplicate. */
static Outcome
remember_span(Scan *s, const SpanFields *sp, int *is_new)
{
    PyObject *key = PyBytes_FromStringAndSize(NULL, 24);
    if (key == NULL)
        return SCAN_ERROR;
    memcpy(PyBytes_AS_STRING(key), sp->trace_id.ptr, 16);
    memcpy(PyBytes_AS_STRING(key) + 16, sp->span_id.ptr, 8);
    int seen = PySet_Contains(s->seen, key);
    if (seen == 0 && (PySet_Add(s->seen, key) < 0 || PyList_Append(s->span_keys, key) < 0))
        seen = -1;
    Py_DECREF(key);
    if (seen < 0)
        return SCAN_ERROR;
    *is_new = !seen;
    return SCAN_OK;
}

static Outcome
entity_row(Scan *s, Slice key, const Value *value, Slice text, const SpanFields *sp,
           const ScopeRow *scope, int64_t start)
{
    TRY(column_slice(&s->entities[ENT_KEY], key));
    if (value != NULL)
        TRY(column_value_text(&s->entities[ENT_VALUE], value));
    else
        TRY(column_slice(&s->entities[ENT_VALUE], text));
    TRY(column_slice(&s->entities[ENT_TRACE_ID], sp->trace_id));
    TRY(column_slice(&s->entities[ENT_SPAN_ID], sp->span_id));
    TRY(column_slice(&s->entities[ENT_SERVICE], scope->service));
    return column_fixed(&s->entities[ENT_START], (uint64_t)start);
}

/* The exception event's type and message (prepare_request: the first event named
 * 'exception', read only for spans whose status code is 2). */
static Outcome
read_exception(Scan *s, Slice *type, int *has_type, Slice *message, int *has_message)
{
    for (size_t i = 0; i < s->n_events; i++) {
        Slice name = NO_SLICE;
        FOR_EACH_FIELD(c, f, s->events[i]) {
            if (is_len(&f, 2))
                name = f.data;
        }
        if (!slice_is(name, "exception"))
            continue;
        c = cursor_of(s->events[i]);
        for (;;) {
            NEXT_FIELD_OR_BREAK(c, f);
            if (!is_len(&f, 3))
                continue;
            Attribute a;
            TRY(read_attribute(s, f.data, &a));
            /* kv.value.string_value: '' unless the value is a string */
            Slice text = a.value.kind == ANY_STRING ? a.value.bytes : NO_SLICE;
            if (slice_is(a.key, "exception.type")) {
                *type = text;
                *has_type = 1;
            }
            else if (slice_is(a.key, "exception.message")) {
                *message = text;
                *has_message = 1;
            }
        }
        break;
    }
    return SCAN_OK;
}

/* The second pass over a kept span: its row, entities and links. */
static Outcome
emit_span(Scan *s, Slice span, const SpanFields *sp, const ScopeRow *scope)
{
    Column *cols = s->spans;
    uint64_t start_u = sp->start > INT64_MAX ? (uint64_t)INT64_MAX : sp->start;
    uint64_t end_u = sp->end > INT64_MAX ? (uint64_t)INT64_MAX : sp->end;
    int64_t start = (int64_t)start_u;
    int32_t code = sp->status_code;

    TRY(column_slice(&cols[COL_TRACE_ID], sp->trace_id));
    TRY(column_slice(&cols[COL_SPAN_ID], sp->span_id));
    TRY(sp->parent.len ? column_slice(&cols[COL_PARENT], sp->parent)
                       : column_null(&cols[COL_PARENT]));
    TRY(column_fixed(&cols[COL_RESOURCE_ID], scope->resource_id));
    TRY(column_fixed(&cols[COL_SCOPE_ID], scope->scope_id));
    TRY(column_slice(&cols[COL_SERVICE], scope->service));
    TRY(column_slice(&cols[COL_NAME], sp->name));
    TRY(column_fixed(&cols[COL_KIND], sp->kind >= 0 && sp->kind <= 5 ? (uint64_t)sp->kind : 0));
    TRY(column_fixed(&cols[COL_START], start_u));
    TRY(column_fixed(&cols[COL_DURATION], end_u > start_u ? end_u - start_u : 0));
    TRY(column_fixed(&cols[COL_STATUS_CODE], code >= 0 && code <= 2 ? (uint64_t)code : 0));
    TRY(sp->status_message.len ? column_slice(&cols[COL_STATUS_MESSAGE], sp->status_message)
                               : column_null(&cols[COL_STATUS_MESSAGE]));

    /* Attributes: entities as they come, semantic columns by rank (ingest.py). */
    memset(s->slots, 0, sizeof(Slot) * (size_t)s->n_semantic);
    int n_string = s->table->n_string;
    for (size_t i = 0; i < s->n_attrs; i++) {
        const Attribute *a = &s->attrs[i];
        long where;
        KeyMemo *memo = &s->memos[memo_slot(a->key)];
        if (memo->known && memo->key.len == a->key.len &&
            memcmp(memo->key.ptr, a->key.ptr, a->key.len) == 0) {
            where = memo->code;
        }
        else {
            TRY(key_code(s->table, s->classify, a->key, &where));
            memo->key = a->key;
            memo->code = where;
            memo->known = 1;
        }
        if (where == KEY_PLAIN)
            continue;
        if (where == KEY_ENTITY) {
            if (value_has_nonempty_text(&a->value))
                TRY(entity_row(s, a->key, &a->value, NO_SLICE, sp, scope, start));
            continue;
        }
        int column = (int)(where >> 8);
        int rank = (int)(where & 0xff);
        Slot *slot = &s->slots[column];
        if (slot->set && slot->rank <= rank)
            continue; /* an older name of a convention the span also set anew */
        if (rank)
            slot->rank = rank;
        slot->set = 1;
        if (column < n_string)
            slot->value = a->value;
        else
            TRY(int_column_value(&a->value, &slot->number));
    }
    for (Py_ssize_t i = 0; i < scope->n_entities; i++) {
        const TextPair *pair = &s->resource_entities[scope->first_entity + i];
        TRY(entity_row(s, pair->key, NULL, pair->value, sp, scope, start));
    }

    Slice type = NO_SLICE, message = NO_SLICE;
    int has_type = 0, has_message = 0;
    if (code == 2 && s->n_events)
        TRY(read_exception(s, &type, &has_type, &message, &has_message));
    TRY(has_type ? column_slice(&cols[COL_EXCEPTION_TYPE], type)
                 : column_null(&cols[COL_EXCEPTION_TYPE]));
    TRY(has_message ? column_slice(&cols[COL_EXCEPTION_MESSAGE], message)
                    : column_null(&cols[COL_EXCEPTION_MESSAGE]));

    for (int j = 0; j < s->n_semantic; j++) {
        Column *col = &cols[COL_SEMANTIC + j];
        const Slot *slot = &s->slots[j];
        if (!slot->set)
            TRY(column_null(col));
        else if (j < n_string)
            TRY(column_value_text(col, &slot->value));
        else
            TRY(column_fixed(col, (uint64_t)slot->number));
    }

    /* raw: the span's own bytes without its ids, which have columns (reads put them
     * back); the rest stays as the sender wrote it. */
    Column *raw = &cols[COL_SEMANTIC + s->n_semantic];
    const uint8_t *from = span.ptr;
    for (size_t i = 0; i < s->n_strip; i++) {
        TRY(buf_append(&raw->data, from, (size_t)(s->strip[i].ptr - from)));
        from = s->strip[i].ptr + s->strip[i].len;
    }
    TRY(buf_append(&raw->data, from, (size_t)(span.ptr + span.len - from)));
    TRY(column_end_value(raw, 1));

    for (size_t i = 0; i < s->n_link_ids; i++) {
        const LinkIds *link = &s->link_ids[i];
        if (link->trace_id.len != 16 || link->span_id.len != 8)
            continue;
        TRY(column_slice(&s->links[LNK_TRACE_ID], sp->trace_id));
        TRY(column_slice(&s->links[LNK_SPAN_ID], sp->span_id));
        TRY(column_slice(&s->links[LNK_LINKED_TRACE_ID], link->trace_id));
        TRY(column_slice(&s->links[LNK_LINKED_SPAN_ID], link->span_id));
        TRY(column_fixed(&s->links[LNK_START], start_u));
    }

    if (cols[COL_TRACE_ID].rows == 1 || start < s->min_start)
        s->min_start = start;
    if (cols[COL_TRACE_ID].rows == 1 || start > s->max_start)
        s->max_start = start;
    return SCAN_OK;
}

static Outcome
scan_span(Scan *s, Slice span, const ScopeRow *scope)
{
    SpanFields sp;
    TRY(read_span(s, span, &sp));
    if (sp.trace_id.len != 16 || sp.span_id.len != 8 || is_zero(sp.trace_id) ||
        is_zero(sp.span_id) || (sp.parent.len && sp.parent.len != 8))
        return reject_span(s, &sp);
    int is_new;
    TRY(remember_span(s, &sp, &is_new));
    if (!is_new) {
        s->duplicates++;
        return SCAN_OK;
    }
    return emit_span(s, span, &sp, scope);
}

static Outcome
reserve_span_columns(Scan *s, size_t spans, size_t bytes)
{
    for (Py_ssize_t i = 0; i < span_column_count(s); i++) {
        Column *c = &s->spans[i];
        TRY(buf_reserve(&c->offsets, c->width ? 0 : 4 * spans));
        TRY(buf_reserve(&c->data, c->width ? (size_t)c->width * spans : 0));
    }
    TRY(buf_reserve(&s->spans[COL_TRACE_ID].data, 16 * spans));
    TRY(buf_reserve(&s->spans[COL_SPAN_ID].data, 8 * spans));
    TRY(buf_reserve(&s->spans[COL_SEMANTIC + s->n_semantic].data, bytes)); /* raw */
    return SCAN_OK;
}

/* Calls `on_span` for every span of a request, in wire order, which is the order of
 * upb's repeated fields: ExportTraceServiceRequest.resource_spans (1) ->
 * ResourceSpans.scope_spans (2) -> ScopeSpans.spans (2); and `on_scope` (unless NULL)
 * before the spans of each ScopeSpans. */
static Outcome
walk_spans(Slice request, Outcome (*on_scope)(void *), Outcome (*on_span)(void *, Slice),
           void *context)
{
    FOR_EACH_FIELD(rc, rf, request) {
        if (!is_len(&rf, 1))
            continue;
        FOR_EACH_FIELD(sc, sf, rf.data) {
            if (!is_len(&sf, 2))
                continue;
            if (on_scope != NULL)
                TRY(on_scope(context));
            FOR_EACH_FIELD(pc, pf, sf.data) {
                if (is_len(&pf, 2))
                    TRY(on_span(context, pf.data));
            }
        }
    }
    return SCAN_OK;
}

/* How many spans a request holds and their bytes in all: the columns are sized for them
 * up front, so that they rarely grow (each growth copies). */
typedef struct {
    size_t spans;
    size_t bytes;
} SpanTotals;

static Outcome
add_to_totals(void *context, Slice span)
{
    SpanTotals *totals = context;
    totals->spans += 1;
    totals->bytes += span.len;
    return SCAN_OK;
}

/* The scan of a request: each ScopeSpans takes the next scope row Python prepared. */
typedef struct {
    Scan *s;
    const ScopeRow *scope;
} ScanPosition;

static Outcome
enter_scope(void *context)
{
    ScanPosition *at = context;
    if (at->s->next_scope >= at->s->n_scopes)
        return SCAN_SCOPES;
    at->scope = &at->s->scopes[at->s->next_scope++];
    return SCAN_OK;
}

static Outcome
scan_span_at(void *context, Slice span)
{
    ScanPosition *at = context;
    return scan_span(at->s, span, at->scope);
}

static Outcome
scan_request(Scan *s, Slice request)
{
    SpanTotals totals = {0, 0};
    TRY(walk_spans(request, NULL, add_to_totals, &totals));
    TRY(reserve_span_columns(s, totals.spans, totals.bytes));
    ScanPosition at = {s, NULL};
    TRY(walk_spans(request, enter_scope, scan_span_at, &at));
    return s->next_scope == s->n_scopes ? SCAN_OK : SCAN_SCOPES;
}

/* ------------------------------------------------------------------ setup and results */

static int
utf8_slice(PyObject *text, Slice *out)
{
    Py_ssize_t len;
    const char *ptr = PyUnicode_AsUTF8AndSize(text, &len);
    if (ptr == NULL)
        return -1;
    out->ptr = len ? (const uint8_t *)ptr : EMPTY;
    out->len = (size_t)len;
    return 0;
}

/* scopes: a tuple of (resource_id, scope_id, service, ((key, value), ...)), one per
 * ScopeSpans in request order. The tuple and the str inside it stay alive (and
 * unchanged) for the whole scan. */
static int
read_scopes(Scan *s, PyObject *scopes)
{
    Py_ssize_t n = PyTuple_GET_SIZE(scopes);
    Py_ssize_t n_entities = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PyTuple_GET_ITEM(scopes, i);
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != 4 ||
            !PyTuple_Check(PyTuple_GET_ITEM(row, 3))) {
            PyErr_SetString(PyExc_TypeError,
                            "scopes: (resource_id, scope_id, service, entities) tuples");
            return -1;
        }
        n_entities += PyTuple_GET_SIZE(PyTuple_GET_ITEM(row, 3));
    }
    s->scopes = PyMem_Calloc((size_t)n + 1, sizeof(ScopeRow));
    s->resource_entities = PyMem_Calloc((size_t)n_entities + 1, sizeof(TextPair));
    if (s->scopes == NULL || s->resource_entities == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    s->n_scopes = n;
    Py_ssize_t next = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PyTuple_GET_ITEM(scopes, i);
        ScopeRow *scope = &s->scopes[i];
        scope->resource_id = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(row, 0));
        if (scope->resource_id == (uint64_t)-1 && PyErr_Occurred())
            return -1;
        scope->scope_id = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(row, 1));
        if (scope->scope_id == (uint64_t)-1 && PyErr_Occurred())
            return -1;
        if (utf8_slice(PyTuple_GET_ITEM(row, 2), &scope->service) < 0)
            return -1;
        PyObject *entities = PyTuple_GET_ITEM(row, 3);
        scope->first_entity = next;
        scope->n_entities = PyTuple_GET_SIZE(entities);
        for (Py_ssize_t j = 0; j < scope->n_entities; j++) {
            PyObject *pair = PyTuple_GET_ITEM(entities, j);
            if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
                PyErr_SetString(PyExc_TypeError, "entities: (key, value) tuples");
                return -1;
            }
            TextPair *out = &s->resource_entities[next++];
            if (utf8_slice(PyTuple_GET_ITEM(pair, 0), &out->key) < 0 ||
                utf8_slice(PyTuple_GET_ITEM(pair, 1), &out->value) < 0)
                return -1;
        }
    }
    return 0;
}

static int
scan_init(Scan *s, KeyTable *table, PyObject *classify)
{
    s->table = table;
    s->classify = classify;
    s->n_semantic = table->n_string + table->n_int;
    s->spans = PyMem_Calloc((size_t)span_column_count(s), sizeof(Column));
    s->slots = PyMem_Calloc((size_t)s->n_semantic + 1, sizeof(Slot));
    s->span_keys = PyList_New(0);
    s->seen = PySet_New(NULL);
    s->samples = PyList_New(0);
    if (s->spans == NULL || s->slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (s->span_keys == NULL || s->seen == NULL || s->samples == NULL)
        return -1;
    for (Py_ssize_t i = 0; i < span_column_count(s); i++) {
        int width = i < COL_SEMANTIC ? SPAN_PREFIX_WIDTHS[i]
                    : i < COL_SEMANTIC + table->n_string ? 0
                    : i < COL_SEMANTIC + s->n_semantic   ? 8
                                                         : 0;
        if (column_init(&s->spans[i], width) != SCAN_OK)
            return -1;
    }
    for (int i = 0; i < ENT_COLUMNS; i++)
        if (column_init(&s->entities[i], ENTITY_WIDTHS[i]) != SCAN_OK)
            return -1;
    for (int i = 0; i < LNK_COLUMNS; i++)
        if (column_init(&s->links[i], LINK_WIDTHS[i]) != SCAN_OK)
            return -1;
    return 0;
}

static void
scan_free(Scan *s)
{
    if (s->spans)
        for (Py_ssize_t i = 0; i < span_column_count(s); i++)
            column_free(&s->spans[i]);
    PyMem_Free(s->spans);
    for (int i = 0; i < ENT_COLUMNS; i++)
        column_free(&s->entities[i]);
    for (int i = 0; i < LNK_COLUMNS; i++)
        column_free(&s->links[i]);
    PyMem_Free(s->scopes);
    PyMem_Free(s->resource_entities);
    PyMem_Free(s->attrs);
    PyMem_Free(s->events);
    PyMem_Free(s->link_ids);
    PyMem_Free(s->strip);
    PyMem_Free(s->slots);
    Py_XDECREF(s->span_keys);
    Py_XDECREF(s->seen);
    Py_XDECREF(s->samples);
}

static PyObject *
columns_object(Column *columns, Py_ssize_t n)
{
    PyObject *list = PyList_New(n);
    if (list == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *column = column_object(&columns[i]);
        if (column == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, column);
    }
    return list;
}

static PyObject *
scan_result(Scan *s)
{
    PyObject *spans = columns_object(s->spans, span_column_count(s));
    PyObject *entities = columns_object(s->entities, ENT_COLUMNS);
    PyObject *links = columns_object(s->links, LNK_COLUMNS);
    if (spans == NULL || entities == NULL || links == NULL) {
        Py_XDECREF(spans);
        Py_XDECREF(entities);
        Py_XDECREF(links);
        return NULL;
    }
    return Py_BuildValue("(nNnNnNOLLnnO)", s->spans[COL_TRACE_ID].rows, spans,
                         s->entities[ENT_KEY].rows, entities, s->links[LNK_TRACE_ID].rows,
                         links, s->span_keys, (long long)s->min_start,
                         (long long)s->max_start, s->rejected, s->duplicates, s->samples);
}

PyDoc_STRVAR(scan_doc,
"scan(data, scopes, table, classify, limits)\n"
"--\n\n"
"The span, entity and link columns of a serialized ExportTraceServiceRequest that upb\n"
"has parsed. scopes: one (resource_id, scope_id, service, resource_entities) per\n"
"ScopeSpans; classify(key) -> key code on a table miss; limits: (max_attributes,\n"
"max_value_bytes, max_depth) of the ingest policy, or None. Returns (rows, span columns,\n"
"entity rows, entity columns, link rows, link columns, span_keys, min_start, max_start,\n"
"rejected, duplicates, reject samples), or a str saying why the request needs the\n"
"Python path.");

static PyObject *
scan(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer data;
    PyObject *scopes, *classify, *limits;
    KeyTable *table;
    if (!PyArg_ParseTuple(args, "y*O!O!OO", &data, &PyTuple_Type, &scopes, &KeyTableType,
                          &table, &classify, &limits))
        return NULL;
    Scan s;
    memset(&s, 0, sizeof(s));
    PyObject *result = NULL;
    if (limits != Py_None) {
        unsigned long long max_attributes, max_value_bytes, max_depth;
        if (!PyArg_ParseTuple(limits, "KKK;limits: (max_attributes, max_value_bytes, max_depth)",
                              &max_attributes, &max_value_bytes, &max_depth))
            goto done;
        s.limited = 1;
        s.max_attributes = max_attributes;
        s.max_value_bytes = max_value_bytes;
        s.max_depth = max_depth;
    }
    if (!PyCallable_Check(classify)) {
        PyErr_SetString(PyExc_TypeError, "classify must be callable");
        goto done;
    }
    if (scan_init(&s, table, classify) < 0 || read_scopes(&s, scopes) < 0)
        goto done;
    Slice request = {data.len ? (const uint8_t *)data.buf : EMPTY, (size_t)data.len};
    Outcome outcome = scan_request(&s, request);
    if (outcome == SCAN_OK)
        result = scan_result(&s);
    else if (outcome != SCAN_ERROR)
        result = PyUnicode_FromString(OUTCOME_REASON[outcome]);
done:
    scan_free(&s);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef module_methods[] = {
    {"scan", scan, METH_VARARGS, scan_doc},
    {NULL, NULL, 0, NULL},
};

static PyObject *
names_tuple(const char *const *names, int n)
{
    PyObject *tuple = PyTuple_New(n);
    if (tuple == NULL)
        return NULL;
    for (int i = 0; i < n; i++) {
        PyObject *name = PyUnicode_FromString(names[i]);
        if (name == NULL) {
            Py_DECREF(tuple);
            return NULL;
        }
        PyTuple_SET_ITEM(tuple, i, name);
    }
    return tuple;
}

static int
add_names(PyObject *module, const char *attribute, const char *const *names, int n)
{
    PyObject *tuple = names_tuple(names, n);
    if (tuple == NULL)
        return -1;
    int failed = PyModule_AddObjectRef(module, attribute, tuple);
    Py_DECREF(tuple);
    return failed;
}

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "spanstore.decode._otlpscan",
    .m_doc = "The per-span work of spanstore.decode.prepare.prepare_request over serialized "
             "requests (see spanstore/decode/scan.py).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__otlpscan(void)
{
    const uint16_t probe = 1;
    if (*(const uint8_t *)&probe != 1) {
        PyErr_SetString(PyExc_ImportError, "spanstore.decode._otlpscan writes little-endian buffers");
        return NULL;
    }
    if (PyType_Ready(&KeyTableType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "KeyTable", (PyObject *)&KeyTableType) < 0 ||
        add_names(module, "SPAN_COLUMN_PREFIX", SPAN_PREFIX_NAMES, COL_SEMANTIC) < 0 ||
        add_names(module, "ENTITY_COLUMNS", ENTITY_NAMES, ENT_COLUMNS) < 0 ||
        add_names(module, "LINK_COLUMNS", LINK_NAMES, LNK_COLUMNS) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
