#!/usr/bin/env python3
# gen_bin.py: writes the protobuf test cases (pb_*.bin) of this folder with a
# tiny hand-written protobuf encoder; rerun after editing a case:
#   python3 tests/data/otlp/gen_bin.py
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field, wt):
    return varint(field << 3 | wt)


def ld(field, data):
    if isinstance(data, str):
        data = data.encode()
    return key(field, 2) + varint(len(data)) + data


def f64(field, n):
    return key(field, 1) + struct.pack("<Q", n)


def vint(field, n):
    return key(field, 0) + varint(n)


def any_str(s):
    return ld(1, s)


def any_int(n):
    return vint(3, n & 0xFFFFFFFFFFFFFFFF)


def any_arr(values):
    return ld(5, b"".join(ld(1, v) for v in values))


def kv(k, anyv):
    return ld(1, k) + ld(2, anyv)


TID = bytes.fromhex("5654e161600dfb2ffdfaf7d91808ac81")
T0 = 1767225600000000000


def span(sid, name="op", tid=TID, parent=b"", start=T0, end=T0 + 1000, attrs=(), events=(), links=(), kind=2):
    b = ld(1, tid) + ld(2, sid)
    if parent:
        b += ld(4, parent)
    b += ld(5, name) + vint(6, kind)
    if start:
        b += f64(7, start)
    if end:
        b += f64(8, end)
    b += b"".join(ld(9, a) for a in attrs)
    b += b"".join(ld(11, e) for e in events)
    b += b"".join(ld(13, lk) for lk in links)
    return b


def event(name, attrs=()):
    return f64(1, T0 + 10) + ld(2, name) + b"".join(ld(3, a) for a in attrs)


def link(tid, sid):
    return ld(1, tid) + ld(2, sid)


def request(spans, resource_attrs=(kv("service.name", any_str("checkout-api")),), scope=ld(1, "test")):
    res = b"".join(ld(1, a) for a in resource_attrs)
    ss = ld(1, scope) + b"".join(ld(2, s) for s in spans)
    rs = ld(1, res) + ld(2, ss)
    return ld(1, rs)


def sid(n):
    return struct.pack(">Q", n)


def write(name, data):
    with open(os.path.join(HERE, name + ".bin"), "wb") as f:
        f.write(data)


def nested_any(levels):
    v = any_str("leaf")
    for _ in range(levels):
        v = any_arr([v])
    return v


def main():
    fixture = os.path.join(HERE, "..", "..", "..", "..", "shared", "otlp-fixtures", "traces-proto.bin")
    good = [span(sid(1)), span(sid(2), parent=sid(1)), span(sid(3), parent=sid(1))]

    write("pb_empty", b"")
    write("pb_ok_three", request(good))
    if os.path.exists(fixture):
        with open(fixture, "rb") as f:
            write("pb_truncated", f.read()[:1000])
    write("pb_garbage", bytes(range(0xF0, 0x100)) * 4)
    write("pb_bad_wiretype", key(1, 7) + b"\x00\x00")
    write("pb_group_wiretype", key(1, 3) + key(1, 4))
    write("pb_overlong_length", key(1, 2) + varint(1 << 40) + b"\x00")
    write("pb_bad_varint", key(1, 0) + b"\xff" * 11)
    write("pb_short_trace_id", request(good[:2] + [span(sid(3), tid=TID[:15])]))
    write("pb_long_span_id", request(good[:2] + [span(sid(3) + b"\x01")]))
    write("pb_zero_ids", request(good[:1] + [span(sid(2), tid=bytes(16)), span(bytes(8))]))
    write("pb_missing_ids", request(good[:1] + [span(b"", tid=b"")]))
    write("pb_bad_parent", request(good[:2] + [span(sid(3), parent=b"\x01\x02\x03\x04")]))
    write("pb_zero_parent", request([span(sid(1), parent=bytes(8))]))
    write("pb_end_before_start", request(good[:2] + [span(sid(3), start=T0 + 5, end=T0)]))
    write("pb_no_start", request(good[:2] + [span(sid(3), start=0)]))
    write("pb_all_invalid", request([span(bytes(8)), span(sid(2), start=0)]))
    write("pb_invalid_utf8", request([span(sid(1), name=b"bad \xff name \xc0\x80 \xed\xa0\x80 \xf4\x90\x80\x80",
                                           attrs=[kv(b"k\xfe", any_str(b"v\xc3")), kv("ok", any_arr([any_str(b"\x80")]))],
                                           events=[event(b"ev\xff")])]))
    write("pb_deep_nesting", request([span(sid(1), attrs=[kv("deep", nested_any(200))])]))
    write("pb_any_too_deep", request([span(sid(1), attrs=[kv("deep", nested_any(10)), kv("fine", nested_any(3))])]))
    write("pb_too_many_spans", request(good))
    attrs5 = [kv("a%d" % i, any_int(i)) for i in range(5)]
    write("pb_over_limits", request([span(sid(1), attrs=attrs5,
                                          events=[event("e%d" % i, attrs5) for i in range(4)],
                                          links=[link(TID, sid(9 + i)) for i in range(3)])]))
    write("pb_long_value", request([span(sid(1), attrs=[kv("long", any_str("0123456789abcd\u20ac\u20ac\u20ac")),
                                                        kv("short", any_str("fits"))])]))
    write("pb_bad_keys", request([span(sid(1), attrs=[kv("", any_str("x")), kv("k" * 300, any_str("x")),
                                                      kv("good", any_str("x"))])]))
    write("pb_unknown_fields", request([span(sid(1)) + vint(99, 7) + ld(100, b"\x01\x02")]))


main()
