/* The per-step frame codec of bridge.frame_meta / bridge.wire in C.
 *
 * Why: a lockstep step of a small frame is latency-bound, and its encode (server) and
 * read (client) are dozens of small Python and numpy calls each. This module does the
 * common case of each side in one call; everything else returns None and the caller takes
 * the Python path, which stays the reference (same bytes, same values, same errors).
 *
 *   encode_frame(step_id, agent_id, rgb, depth, pose, K, frame_id, sim_time, collided,
 *                hand_keypoints, max_chunk_bytes) -> bytes | None
 *       The serialised FrameSet (max_chunk_bytes == 0) or whole-frame FrameChunk
 *       (max_chunk_bytes > 0) of one agent's RAW frame: byte for byte what
 *       `encode_frameset(...).to_bytes()` / `.chunks(...)[0]` write.
 *   decode_frame(message, chunk) -> tuple | None
 *       (step_id, agent_id, frame_id, sim_time, collided, height, width, rgb_offset,
 *        depth_offset, pose, k) of a one-frame FrameSet (chunk false) or whole-frame
 *       FrameChunk (chunk true) in our layout whose values pass the client's fast-path
 *       checks, pose and K being bytearrays of 16 and 9 native doubles (row-major);
 *       None for anything else, valid or not (the Python path then decides).
 *
 * The client's input is untrusted: every read is bounds-checked against the message.
 * Floating-point formulas are those of the Python code, operation by operation, and the
 * module is compiled without FMA contraction, so results are bit-identical. Python's own
 * math.hypot (an accurate multi-argument norm, unlike C's) is called where Python calls it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Set once by configure(): the numpy ndarray type, math.hypot and the wire's constants. */
static PyObject *ndarray_type = NULL;
static PyObject *hypot_fn = NULL;
static long rgb_format = -1, depth_format = -1, raw_codec = -1;
static long long max_image_pixels = 0;
static double quat_norm_tolerance = 0.0;

/* Values beyond this make the fast path hand over: sums of a few of them stay finite. */
#define LARGE_VALUE 1e300
#define MAX_VARINT_BYTES 10
#define POSE_FIELD_BYTES 63 /* 7 x (key + double) */
#define QUAT_EPS 1e-12

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_LITTLE_ENDIAN 1
#elif defined(_WIN32)
#define HOST_LITTLE_ENDIAN 1
#else
#define HOST_LITTLE_ENDIAN 0
#endif

/* ------------------------------------------------------------------ writing */
static size_t varint_size(uint64_t value) {
    size_t n = 1;
    while (value >= 0x80) {
        value >>= 7;
        n++;
    }
    return n;
}

static unsigned char *put_varint(unsigned char *out, uint64_t value) {
    while (value >= 0x80) {
        *out++ = (unsigned char)(value & 0x7F) | 0x80;
        value >>= 7;
    }
    *out++ = (unsigned char)value;
    return out;
}

static unsigned char *put_double(unsigned char *out, unsigned char key, double value) {
    *out++ = key;
    memcpy(out, &value, 8); /* little-endian host only (checked by the caller) */
    return out + 8;
}

/* An `Image` header as protobuf writes it (all five fields are non-zero here). */
static size_t image_header_size(uint64_t width, uint64_t height, uint64_t total) {
    return 4 + 1 + varint_size(width) + 1 + varint_size(height) + 1 + varint_size(total);
}

static unsigned char *put_image(unsigned char *out, unsigned char key, long pixel_format,
                                uint64_t width, uint64_t height, const Py_buffer *data) {
    uint64_t total = (uint64_t)data->len;
    size_t body = image_header_size(width, height, total) + 1 + varint_size(total) + total;
    *out++ = key;
    out = put_varint(out, body);
    *out++ = 0x08;
    *out++ = (unsigned char)pixel_format;
    *out++ = 0x10;
    *out++ = (unsigned char)raw_codec;
    *out++ = 0x18;
    out = put_varint(out, width);
    *out++ = 0x20;
    out = put_varint(out, height);
    *out++ = 0x30;
    out = put_varint(out, total);
    *out++ = 0x2A;
    out = put_varint(out, total);
    memcpy(out, data->buf, (size_t)total);
    return out + total;
}

static size_t image_field_size(uint64_t width, uint64_t height, uint64_t total) {
    size_t body = image_header_size(width, height, total) + 1 + varint_size(total) + total;
    return 1 + varint_size(body) + body;
}

/* Python's math.hypot(a, b, c, d); returns -1 with no exception set when it fails. */
static double python_hypot(double a, double b, double c, double d) {
    PyObject *args[4] = {PyFloat_FromDouble(a), PyFloat_FromDouble(b), PyFloat_FromDouble(c),
                         PyFloat_FromDouble(d)};
    PyObject *result = NULL;
    double value = -1.0;
    if (args[0] && args[1] && args[2] && args[3]) {
        result = PyObject_Vectorcall(hypot_fn, args, 4, NULL);
    }
    for (int i = 0; i < 4; i++) {
        Py_XDECREF(args[i]);
    }
    if (result != NULL) {
        value = PyFloat_AsDouble(result);
        Py_DECREF(result);
    }
    if (PyErr_Occurred()) {
        PyErr_Clear();
        value = -1.0;
    }
    return value;
}

/* conventions._rows_quat then _unit_quat: the canonical unit quaternion of a pose's
 * rotation, same operations in the same order. Returns 0 where Python would raise (a
 * negative square root, a zero divisor, a degenerate norm): the caller hands over. */
static int pose_quaternion(const double *T, double q[4]) {
    double r00 = T[0], r01 = T[1], r02 = T[2];
    double r10 = T[4], r11 = T[5], r12 = T[6];
    double r20 = T[8], r21 = T[9], r22 = T[10];
    double trace = r00 + r11 + r22;
    double radicand, s, w, x, y, z;
    if (trace > 0) {
        radicand = 1.0 + trace;
    } else if (r00 > r11 && r00 > r22) {
        radicand = 1.0 + r00 - r11 - r22;
    } else if (r11 > r22) {
        radicand = 1.0 + r11 - r00 - r22;
    } else {
        radicand = 1.0 + r22 - r00 - r11;
    }
    if (!(radicand >= 0.0)) {
        return 0;
    }
    s = 2.0 * sqrt(radicand);
    if (s == 0.0) {
        return 0;
    }
    if (trace > 0) {
        w = 0.25 * s, x = (r21 - r12) / s, y = (r02 - r20) / s, z = (r10 - r01) / s;
    } else if (r00 > r11 && r00 > r22) {
        w = (r21 - r12) / s, x = 0.25 * s, y = (r01 + r10) / s, z = (r02 + r20) / s;
    } else if (r11 > r22) {
        w = (r02 - r20) / s, x = (r01 + r10) / s, y = 0.25 * s, z = (r12 + r21) / s;
    } else {
        w = (r10 - r01) / s, x = (r02 + r20) / s, y = (r12 + r21) / s, z = 0.25 * s;
    }
    double n = python_hypot(w, x, y, z);
    if (!isfinite(n) || n < QUAT_EPS) {
        return 0;
    }
    q[0] = w / n, q[1] = x / n, q[2] = y / n, q[3] = z / n;
    double leading = q[0];
    for (int i = 0; i < 4; i++) {
        if (fabs(q[i]) > QUAT_EPS) {
            leading = q[i];
            break;
        }
    }
    if (leading < 0) {
        for (int i = 0; i < 4; i++) {
            q[i] = -q[i];
        }
    }
    return 1;
}

static int all_moderate(const double *values, Py_ssize_t count) {
    for (Py_ssize_t i = 0; i < count; i++) {
        if (!(fabs(values[i]) <= LARGE_VALUE)) { /* also false for NaN */
            return 0;
        }
    }
    return 1;
}

/* A C-contiguous buffer of an exact numpy ndarray with this format and shape prefix. */
static int get_array(PyObject *obj, Py_buffer *view, const char *format, int ndim) {
    if ((PyObject *)Py_TYPE(obj) != ndarray_type) {
        return 0;
    }
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) != 0) {
        PyErr_Clear();
        return 0;
    }
    if (view->ndim != ndim || view->format == NULL || strcmp(view->format, format) != 0) {
        PyBuffer_Release(view);
        return 0;
    }
    return 1;
}

static PyObject *encode_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 11) {
        PyErr_SetString(PyExc_TypeError, "encode_frame takes 11 arguments");
        return NULL;
    }
    if (ndarray_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_framecodec.configure was not called");
        return NULL;
    }
    PyObject *step_obj = args[0], *agent_obj = args[1], *frame_obj = args[6], *time_obj = args[7];
    if (!HOST_LITTLE_ENDIAN || !PyLong_CheckExact(step_obj) || !PyUnicode_CheckExact(agent_obj) ||
        !PyLong_CheckExact(frame_obj) || !PyLong_CheckExact(args[10]) || args[9] != Py_None ||
        !(PyFloat_CheckExact(time_obj) || PyLong_CheckExact(time_obj))) {
        Py_RETURN_NONE;
    }
    unsigned long long step_id = PyLong_AsUnsignedLongLong(step_obj);
    unsigned long long frame_id = PyLong_AsUnsignedLongLong(frame_obj);
    long long max_chunk = PyLong_AsLongLong(args[10]);
    double sim_time = PyFloat_CheckExact(time_obj) ? PyFloat_AS_DOUBLE(time_obj) : PyLong_AsDouble(time_obj);
    if (PyErr_Occurred()) { /* negative or huge ids, huge ints: the Python path decides */
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    int collided = PyObject_IsTrue(args[8]);
    if (collided < 0) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    Py_ssize_t agent_size;
    const char *agent = PyUnicode_AsUTF8AndSize(agent_obj, &agent_size);
    if (agent == NULL) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }

    Py_buffer rgb, depth, pose, K;
    int have_rgb = 0, have_depth = 0, have_pose = 0, have_K = 0;
    PyObject *result = NULL;
    have_rgb = get_array(args[2], &rgb, "B", 3);
    have_depth = have_rgb && get_array(args[3], &depth, "f", 2);
    have_pose = have_depth && get_array(args[4], &pose, "d", 2);
    have_K = have_pose && get_array(args[5], &K, "d", 2);
    if (!have_K) {
        goto hand_over;
    }
    uint64_t height = (uint64_t)rgb.shape[0], width = (uint64_t)rgb.shape[1];
    if (rgb.shape[2] != 3 || depth.shape[0] != rgb.shape[0] || depth.shape[1] != rgb.shape[1] ||
        height == 0 || width == 0 || pose.shape[0] != 4 || pose.shape[1] != 4 || K.shape[0] != 3 ||
        K.shape[1] != 3) {
        goto hand_over;
    }
    const double *T = (const double *)pose.buf, *k = (const double *)K.buf;
    if (!all_moderate(T, 16) || !all_moderate(k, 9) || k[1] != 0.0 || !isfinite(sim_time)) {
        goto hand_over;
    }
    if (max_chunk > 0 && (long long)(rgb.len + depth.len) > max_chunk) {
        goto hand_over; /* split into several chunks: the Python path cuts them */
    }
    double q[4];
    if (!pose_quaternion(T, q)) {
        goto hand_over;
    }

    size_t intrinsics_body = 36 + 1 + varint_size(width) + 1 + varint_size(height);
    size_t frame_body = 1 + varint_size((uint64_t)agent_size) + (size_t)agent_size + 1 +
                        varint_size(frame_id) + 9 + 2 + POSE_FIELD_BYTES + 1 +
                        varint_size(intrinsics_body) + intrinsics_body + (collided ? 2 : 0) +
                        image_field_size(width, height, (uint64_t)rgb.len) +
                        image_field_size(width, height, (uint64_t)depth.len);
    size_t head = (step_id ? 1 + varint_size(step_id) : 0) + (max_chunk > 0 ? 4 : 0);
    size_t total = head + 1 + varint_size(frame_body) + frame_body;
    result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (result == NULL) {
        goto done;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result), *start = out;
    if (step_id) {
        *out++ = 0x08;
        out = put_varint(out, step_id);
    }
    if (max_chunk > 0) { /* last_chunk = true, frame_count = 1, then FrameChunk.frame */
        *out++ = 0x28, *out++ = 0x01, *out++ = 0x30, *out++ = 0x01;
        *out++ = 0x22;
    } else {
        *out++ = 0x12; /* FrameSet.frames */
    }
    out = put_varint(out, frame_body);
    *out++ = 0x0A;
    out = put_varint(out, (uint64_t)agent_size);
    memcpy(out, agent, (size_t)agent_size);
    out += agent_size;
    *out++ = 0x10;
    out = put_varint(out, frame_id);
    out = put_double(out, 0x19, sim_time);
    *out++ = 0x22;
    *out++ = POSE_FIELD_BYTES;
    out = put_double(out, 0x09, T[3]);
    out = put_double(out, 0x11, T[7]);
    out = put_double(out, 0x19, T[11]);
    out = put_double(out, 0x21, q[0]);
    out = put_double(out, 0x29, q[1]);
    out = put_double(out, 0x31, q[2]);
    out = put_double(out, 0x39, q[3]);
    *out++ = 0x2A;
    out = put_varint(out, intrinsics_body);
    out = put_double(out, 0x09, k[0]);
    out = put_double(out, 0x11, k[4]);
    out = put_double(out, 0x19, k[2]);
    out = put_double(out, 0x21, k[5]);
    *out++ = 0x28;
    out = put_varint(out, width);
    *out++ = 0x30;
    out = put_varint(out, height);
    if (collided) {
        *out++ = 0x48, *out++ = 0x01;
    }
    out = put_image(out, 0x32, rgb_format, width, height, &rgb);
    out = put_image(out, 0x3A, depth_format, width, height, &depth);
    if ((size_t)(out - start) != total) { /* cannot happen: sizes and writes are paired */
        Py_CLEAR(result);
        PyErr_SetString(PyExc_SystemError, "_framecodec.encode_frame: size mismatch");
    }
    goto done;

hand_over:
    result = Py_NewRef(Py_None);
done:
    if (have_K) PyBuffer_Release(&K);
    if (have_pose) PyBuffer_Release(&pose);
    if (have_depth) PyBuffer_Release(&depth);
    if (have_rgb) PyBuffer_Release(&rgb);
    return result;
}

/* ------------------------------------------------------------------ reading */
typedef struct {
    const unsigned char *buf;
    Py_ssize_t pos, end;
} Reader;

/* Each reader returns 0 on any mismatch or overrun (the caller then returns None). */
static int read_varint(Reader *r, uint64_t *value) {
    uint64_t result = 0;
    for (int i = 0; i < MAX_VARINT_BYTES; i++) {
        if (r->pos >= r->end) {
            return 0;
        }
        unsigned char byte = r->buf[r->pos++];
        if (i == MAX_VARINT_BYTES - 1 && byte > 1) {
            return 0; /* beyond 64 bits */
        }
        result |= (uint64_t)(byte & 0x7F) << (7 * i);
        if (byte < 0x80) {
            *value = result;
            return 1;
        }
    }
    return 0;
}

static int expect(Reader *r, unsigned char key) {
    if (r->pos >= r->end || r->buf[r->pos] != key) {
        return 0;
    }
    r->pos++;
    return 1;
}

/* A length-delimited field `key`: its payload is [*start, *stop), within the reader. */
static int read_len(Reader *r, unsigned char key, Py_ssize_t *start, Py_ssize_t *stop) {
    uint64_t size;
    if (!expect(r, key) || !read_varint(r, &size) || size > (uint64_t)(r->end - r->pos)) {
        return 0;
    }
    *start = r->pos;
    *stop = r->pos + (Py_ssize_t)size;
    return 1;
}

static int read_double(Reader *r, unsigned char key, double *value) {
    if (!expect(r, key) || r->end - r->pos < 8) {
        return 0;
    }
    memcpy(value, r->buf + r->pos, 8);
    r->pos += 8;
    return 1;
}

typedef struct {
    uint64_t format, codec, width, height, total;
    Py_ssize_t data_start, data_size;
} Image;

/* One byte below 0x80: a one-byte enum value, as the Python reader requires. */
static int read_small(Reader *r, uint64_t *value) {
    if (r->pos >= r->end || r->buf[r->pos] >= 0x80) {
        return 0;
    }
    *value = r->buf[r->pos++];
    return 1;
}

/* An `Image` in protobuf's field order, whose data ends exactly at r->end. */
static int read_image(Reader *r, Image *image) {
    Py_ssize_t start, stop;
    if (!expect(r, 0x08) || !read_small(r, &image->format) || !expect(r, 0x10) ||
        !read_small(r, &image->codec) || !expect(r, 0x18) || !read_varint(r, &image->width) || !expect(r, 0x20) ||
        !read_varint(r, &image->height) || !expect(r, 0x30) || !read_varint(r, &image->total) ||
        !read_len(r, 0x2A, &start, &stop) || stop != r->end) {
        return 0;
    }
    image->data_start = start;
    image->data_size = stop - start;
    r->pos = stop;
    return 1;
}

static PyObject *decode_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "decode_frame takes 2 arguments");
        return NULL;
    }
    if (hypot_fn == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_framecodec.configure was not called");
        return NULL;
    }
    PyObject *message = args[0];
    int chunk = PyObject_IsTrue(args[1]);
    if (chunk < 0) {
        return NULL;
    }
    if (!PyBytes_CheckExact(message) || !HOST_LITTLE_ENDIAN) {
        Py_RETURN_NONE;
    }
    Reader r = {(const unsigned char *)PyBytes_AS_STRING(message), 0, PyBytes_GET_SIZE(message)};
    uint64_t step_id = 0, frame_id;
    Py_ssize_t start, stop, agent_start, agent_stop;
    if (r.end > 0 && r.buf[0] == 0x08) {
        r.pos = 1;
        if (!read_varint(&r, &step_id)) {
            Py_RETURN_NONE;
        }
    }
    if (chunk) { /* last_chunk = true, frame_count = 1, then FrameChunk.frame to the end */
        if (!expect(&r, 0x28) || !expect(&r, 0x01) || !expect(&r, 0x30) || !expect(&r, 0x01) ||
            !read_len(&r, 0x22, &start, &stop)) {
            Py_RETURN_NONE;
        }
    } else if (!read_len(&r, 0x12, &start, &stop)) { /* FrameSet.frames: exactly one */
        Py_RETURN_NONE;
    }
    if (stop != r.end) {
        Py_RETURN_NONE;
    }

    /* The frame: agent_id, frame_id, sim_time, pose, intrinsics, [collided], rgb, depth. */
    double t[8], k[4];
    uint64_t k_width, k_height;
    Image rgb, depth;
    uint64_t collided = 0;
    if (!read_len(&r, 0x0A, &agent_start, &agent_stop)) {
        Py_RETURN_NONE;
    }
    r.pos = agent_stop;
    if (!expect(&r, 0x10) || !read_varint(&r, &frame_id) || !read_double(&r, 0x19, &t[0]) ||
        !expect(&r, 0x22) || !expect(&r, POSE_FIELD_BYTES)) {
        Py_RETURN_NONE;
    }
    static const unsigned char pose_keys[7] = {0x09, 0x11, 0x19, 0x21, 0x29, 0x31, 0x39};
    for (int i = 0; i < 7; i++) {
        if (!read_double(&r, pose_keys[i], &t[i + 1])) {
            Py_RETURN_NONE;
        }
    }
    if (!read_len(&r, 0x2A, &start, &stop)) {
        Py_RETURN_NONE;
    }
    Reader intrinsics = {r.buf, start, stop};
    if (!read_double(&intrinsics, 0x09, &k[0]) || !read_double(&intrinsics, 0x11, &k[1]) ||
        !read_double(&intrinsics, 0x19, &k[2]) || !read_double(&intrinsics, 0x21, &k[3]) ||
        !expect(&intrinsics, 0x28) || !read_varint(&intrinsics, &k_width) || !expect(&intrinsics, 0x30) ||
        !read_varint(&intrinsics, &k_height) || intrinsics.pos != stop) {
        Py_RETURN_NONE;
    }
    r.pos = stop;
    if (r.pos < r.end && r.buf[r.pos] == 0x48) { /* collided: 0 or 1 only */
        r.pos++;
        if (r.pos >= r.end || r.buf[r.pos] > 1) {
            Py_RETURN_NONE;
        }
        collided = r.buf[r.pos++];
    }
    if (!read_len(&r, 0x32, &start, &stop)) { /* hand keypoints (0x42) are not the fast path */
        Py_RETURN_NONE;
    }
    Reader rgb_reader = {r.buf, start, stop};
    if (!read_image(&rgb_reader, &rgb)) {
        Py_RETURN_NONE;
    }
    r.pos = stop;
    if (!read_len(&r, 0x3A, &start, &stop) || stop != r.end) {
        Py_RETURN_NONE;
    }
    Reader depth_reader = {r.buf, start, stop};
    if (!read_image(&depth_reader, &depth)) {
        Py_RETURN_NONE;
    }

    /* bridge.wire._decode_raw_flat_frame's checks: RAW planes of the announced sizes. */
    uint64_t width = rgb.width, height = rgb.height;
    if (rgb.format != (uint64_t)rgb_format || depth.format != (uint64_t)depth_format ||
        rgb.codec != (uint64_t)raw_codec || depth.codec != (uint64_t)raw_codec || depth.width != width ||
        depth.height != height || width > (uint64_t)max_image_pixels ||
        height > (uint64_t)max_image_pixels || width * height > (uint64_t)max_image_pixels ||
        (uint64_t)rgb.data_size != width * height * 3 || (uint64_t)depth.data_size != width * height * 4 ||
        rgb.total != (uint64_t)rgb.data_size || depth.total != (uint64_t)depth.data_size) {
        Py_RETURN_NONE;
    }
    double sim_time = t[0], x = t[1], y = t[2], z = t[3], qw = t[4], qx = t[5], qy = t[6], qz = t[7];
    double fx = k[0], fy = k[1], cx = k[2], cy = k[3];
    if (!all_moderate(t, 8) || !all_moderate(k, 4) || fx <= 0 || fy <= 0) {
        Py_RETURN_NONE;
    }
    double norm = python_hypot(qw, qx, qy, qz);
    if (!(fabs(norm - 1.0) <= quat_norm_tolerance)) {
        Py_RETURN_NONE;
    }
    /* bridge.wire_geometry.pose_matrix, operation by operation. */
    double w = qw / norm, a = qx / norm, b = qy / norm, c = qz / norm;
    double pose[16] = {
        1 - 2 * (b * b + c * c), 2 * (a * b - w * c), 2 * (a * c + w * b), x,
        2 * (a * b + w * c), 1 - 2 * (a * a + c * c), 2 * (b * c - w * a), y,
        2 * (a * c - w * b), 2 * (b * c + w * a), 1 - 2 * (a * a + b * b), z,
        0.0, 0.0, 0.0, 1.0,
    };
    double K[9] = {fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0};

    PyObject *agent_id = PyUnicode_DecodeUTF8((const char *)r.buf + agent_start, agent_stop - agent_start,
                                              "strict");
    if (agent_id == NULL) { /* invalid UTF-8: the protobuf path refuses it with its message */
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    /* Pose and K as native doubles in fresh bytearrays: one writable ndarray call each. */
    PyObject *pose_bytes = PyByteArray_FromStringAndSize((const char *)pose, sizeof pose);
    PyObject *k_bytes = PyByteArray_FromStringAndSize((const char *)K, sizeof K);
    PyObject *result = NULL;
    if (pose_bytes != NULL && k_bytes != NULL) {
        result = Py_BuildValue("(KOKdOKKnnOO)", (unsigned long long)step_id, agent_id,
                               (unsigned long long)frame_id, sim_time, collided ? Py_True : Py_False,
                               (unsigned long long)height, (unsigned long long)width, rgb.data_start,
                               depth.data_start, pose_bytes, k_bytes);
    }
    Py_DECREF(agent_id);
    Py_XDECREF(pose_bytes);
    Py_XDECREF(k_bytes);
    return result;
}

/* ------------------------------------------------------------------ module */
static PyObject *configure(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *ndarray, *hypot;
    long rgb, depth, raw;
    long long max_pixels;
    double tolerance;
    if (!PyArg_ParseTuple(args, "OOlllLd", &ndarray, &hypot, &rgb, &depth, &raw, &max_pixels, &tolerance)) {
        return NULL;
    }
    if (!PyType_Check(ndarray) || !PyCallable_Check(hypot)) {
        PyErr_SetString(PyExc_TypeError, "configure(ndarray_type, hypot, ...) expects a type and a callable");
        return NULL;
    }
    if (rgb < 1 || rgb >= 0x80 || depth < 1 || depth >= 0x80 || raw < 1 || raw >= 0x80 || max_pixels < 1) {
        PyErr_SetString(PyExc_ValueError, "configure: enum values must be one-byte and non-zero");
        return NULL;
    }
    Py_XSETREF(ndarray_type, Py_NewRef(ndarray));
    Py_XSETREF(hypot_fn, Py_NewRef(hypot));
    rgb_format = rgb, depth_format = depth, raw_codec = raw;
    max_image_pixels = max_pixels;
    quat_norm_tolerance = tolerance;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(ndarray_type, hypot, rgb_format, depth_format, raw_codec, max_image_pixels, "
     "quat_norm_tolerance): the constants of the Python side (call once)."},
    {"encode_frame", (PyCFunction)(void (*)(void))encode_frame, METH_FASTCALL,
     "encode_frame(step_id, agent_id, rgb, depth, pose, K, frame_id, sim_time, collided, "
     "hand_keypoints, max_chunk_bytes) -> bytes | None"},
    {"decode_frame", (PyCFunction)(void (*)(void))decode_frame, METH_FASTCALL,
     "decode_frame(message, chunk) -> (step_id, agent_id, frame_id, sim_time, collided, height, "
     "width, rgb_offset, depth_offset, pose_bytes, k_bytes) | None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef framecodec_module = {
    PyModuleDef_HEAD_INIT, "_framecodec", "The per-step frame codec in C (see bridge._native).", -1,
    methods,
};

/* Bumped with every change of the functions' signatures or results: bridge._native
 * refuses a stale build (an in-place .so older than this source) rather than misuse it. */
#define FRAMECODEC_VERSION 2

PyMODINIT_FUNC PyInit__framecodec(void) {
    PyObject *module = PyModule_Create(&framecodec_module);
    if (module != NULL && PyModule_AddIntConstant(module, "VERSION", FRAMECODEC_VERSION) != 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
