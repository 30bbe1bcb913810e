"""Loki's protobuf push body, written from push.proto by hand (no protobuf
package needed), and snappy block compression through libsnappy with ctypes
(the library the aggregator links), for tests that push as Promtail does."""
import ctypes
import ctypes.util


def _varint(v):
    out = bytearray()
    v &= (1 << 64) - 1
    while v >= 0x80:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _len_field(num, payload):
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _b(s):
    return s.encode() if isinstance(s, str) else s


def push_request(streams):
    """streams: [(labels_text, [(ts_ns, line) or (ts_ns, line, {meta})...])]"""
    body = b""
    for labels, entries in streams:
        s = _len_field(1, _b(labels))
        for e in entries:
            ts, line = e[0], _b(e[1])
            secs, nanos = divmod(ts, 10**9)
            t = (_varint(1 << 3) + _varint(secs) if secs else b"") + \
                (_varint(2 << 3) + _varint(nanos) if nanos else b"")
            ent = _len_field(1, t) + _len_field(2, line)
            for k, v in (e[2] if len(e) > 2 else {}).items():
                ent += _len_field(3, _len_field(1, _b(k)) + _len_field(2, _b(v)))
            s += _len_field(2, ent)
        body += _len_field(1, s)
    return body


_lib = None


def _snappy():
    global _lib
    if _lib is None:
        _lib = ctypes.CDLL(ctypes.util.find_library("snappy") or "libsnappy.so.1")
        _lib.snappy_max_compressed_length.restype = ctypes.c_size_t
        _lib.snappy_max_compressed_length.argtypes = [ctypes.c_size_t]
    return _lib


def snappy_compress(data):
    lib = _snappy()
    n = ctypes.c_size_t(lib.snappy_max_compressed_length(len(data)))
    out = ctypes.create_string_buffer(n.value)
    assert lib.snappy_compress(data, ctypes.c_size_t(len(data)), out, ctypes.byref(n)) == 0
    return out.raw[:n.value]


def snappy_uncompress(data):
    lib = _snappy()
    n = ctypes.c_size_t()
    assert lib.snappy_uncompressed_length(data, ctypes.c_size_t(len(data)), ctypes.byref(n)) == 0
    out = ctypes.create_string_buffer(max(n.value, 1))
    assert lib.snappy_uncompress(data, ctypes.c_size_t(len(data)), out, ctypes.byref(n)) == 0
    return out.raw[:n.value]


def wal_records(wal_dir):
    """Payloads of every record in the WAL segments of wal_dir, in order
    (format: common/format.h; push records: aggregator/api/push.h)."""
    import os
    import struct
    out = []
    for name in sorted(os.listdir(wal_dir)):
        if not name.endswith(".wal"):
            continue
        with open(os.path.join(wal_dir, name), "rb") as f:
            data = f.read()
        pos = 8
        while pos + 8 <= len(data):
            n, _crc = struct.unpack_from("<II", data, pos)
            if n == 0 or pos + 8 + n > len(data):
                break
            out.append(data[pos + 8:pos + 8 + n])
            pos += 8 + n
    return out


def _read_varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return v, i


def _fields(b):
    i = 0
    while i < len(b):
        tag, i = _read_varint(b, i)
        num, wt = tag >> 3, tag & 7
        if wt == 0:
            v, i = _read_varint(b, i)
        elif wt == 2:
            n, i = _read_varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wt}")
        yield num, v


def parse_push_request(body):
    """A PushRequest (not compressed) as [(labels_text, [(ts_ns, line, {meta})])]."""
    out = []
    for num, s in _fields(body):
        if num != 1:
            continue
        labels, entries = "", []
        for n2, v in _fields(s):
            if n2 == 1:
                labels = v.decode()
            elif n2 == 2:
                ts, line, meta = 0, b"", {}
                for n3, w in _fields(v):
                    if n3 == 1:
                        t = dict(_fields(w))
                        ts = t.get(1, 0) * 10**9 + t.get(2, 0)
                    elif n3 == 2:
                        line = w
                    elif n3 == 3:
                        kv = dict(_fields(w))
                        meta[kv.get(1, b"").decode()] = kv.get(2, b"").decode()
                entries.append((ts, line.decode(), meta))
        out.append((labels, entries))
    return out
