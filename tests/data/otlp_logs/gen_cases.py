#!/usr/bin/env python3
# gen_cases.py: writes the logs decoder test cases of this folder: NAME.json or
# NAME.bin (protobuf, from a tiny hand-written encoder) and NAME.expect (see
# tests/unit/otlp_cases.h for the format). Rerun after editing a case:
#   python3 tests/data/otlp_logs/gen_cases.py
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "..", "..", "..", "shared", "otlp-fixtures")


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


def f32(field, n):
    return key(field, 5) + struct.pack("<I", n)


def vint(field, n):
    return key(field, 0) + varint(n & 0xFFFFFFFFFFFFFFFF)


def any_str(s):
    return ld(1, s)


def any_arr(values):
    return ld(5, b"".join(ld(1, v) for v in values))


def kv(k, anyv):
    return ld(1, k) + ld(2, anyv)


TID = bytes.fromhex("5654e161600dfb2ffdfaf7d91808ac81")
SID = bytes.fromhex("b02cb7489ca21563")
T0 = 1767225600000000000


def record(body="hello", tid=TID, sid=SID, time=T0, observed=T0 + 1000, sev=9, text="INFO", attrs=()):
    b = b""
    if time:
        b += f64(1, time)
    if observed:
        b += f64(11, observed)
    b += vint(2, sev) + ld(3, text)
    if body is not None:
        b += ld(5, body if isinstance(body, bytes) and body[:1] in (b"\x0a", b"\x2a", b"\x32") else any_str(body))
    b += b"".join(ld(6, a) for a in attrs)
    if tid:
        b += ld(9, tid)
    if sid:
        b += ld(10, sid)
    return b


def request(records, resource_attrs=(kv("service.name", any_str("checkout-api")),)):
    res = b"".join(ld(1, a) for a in resource_attrs)
    sl = ld(1, ld(1, "test")) + b"".join(ld(2, r) for r in records)
    rl = ld(1, res) + ld(2, sl)
    return ld(1, rl)


def nested_any(levels):
    v = any_str("leaf")
    for _ in range(levels):
        v = any_arr([v])
    return v


def write(name, data, expect):
    ext = ".bin" if isinstance(data, bytes) else ".json"
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(os.path.join(HERE, name + ext), mode) as f:
        f.write(data)
    with open(os.path.join(HERE, name + ".expect"), "w") as f:
        f.write(expect.strip() + "\n")


# --- JSON ----------------------------------------------------------------------------

def jrec(**over):
    r = {"timeUnixNano": "1767225600002000000", "observedTimeUnixNano": "1767225600003000000",
         "severityNumber": 9, "severityText": "INFO", "body": {"stringValue": "hello"},
         "attributes": [{"key": "k", "value": {"stringValue": "v"}}],
         "traceId": "5654e161600dfb2ffdfaf7d91808ac81", "spanId": "b02cb7489ca21563", "flags": 1}
    for k, v in over.items():
        if v is None:
            r.pop(k, None)
        else:
            r[k] = v
    return r


def jreq(records):
    return json.dumps({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout-api"}}]},
        "scopeLogs": [{"scope": {"name": "test"}, "logRecords": records}]}]})


def json_cases():
    write("json_ok_two", jreq([jrec(), jrec(severityNumber=17, severityText="ERROR")]), "ok kept=2 rejected=0 count=2")
    write("json_snake_case", json.dumps({"resource_logs": [{"scope_logs": [{"log_records": [{
        "time_unix_nano": "1767225600002000000", "severity_number": 13, "severity_text": "WARN",
        "body": {"string_value": "snake"}, "trace_id": "5654e161600dfb2ffdfaf7d91808ac81",
        "span_id": "b02cb7489ca21563"}]}]}]}), "ok kept=1 rejected=0")
    write("json_empty_ids", jreq([jrec(traceId="", spanId="")]), "ok kept=1 rejected=0")
    write("json_no_ids", jreq([jrec(traceId=None, spanId=None)]), "ok kept=1 rejected=0")
    write("json_zero_ids", jreq([jrec(traceId="0" * 32, spanId="0" * 16)]), "ok kept=1 rejected=0")
    write("json_short_trace_id", jreq([jrec(), jrec(traceId="abcd")]),
          "ok kept=1 rejected=1\nreason 1 log record rejected: invalid trace id")
    write("json_long_span_id", jreq([jrec(spanId="b02cb7489ca2156301")]),
          "ok kept=0 rejected=1 resources=0\nreason 1 log record rejected: invalid span id")
    write("json_odd_id", jreq([jrec(traceId="abc")]), "error SX_OTLP_E_SCHEMA")
    write("json_bad_hex", jreq([jrec(spanId="zz2cb7489ca21563")]), "error SX_OTLP_E_SCHEMA")
    write("json_no_times", jreq([jrec(timeUnixNano=None, observedTimeUnixNano=None)]),
          "# no clock in decoders: both times stay 0, consumers use the entry's receive time\nok kept=1 rejected=0")
    write("json_observed_only", jreq([jrec(timeUnixNano="0")]), "ok kept=1 rejected=0")
    write("json_times_as_numbers", jreq([jrec(timeUnixNano=1767225600002000000,
                                              attributes=[{"key": "n", "value": {"intValue": "42"}}])]),
          "ok kept=1 rejected=0")
    write("json_time_negative", jreq([jrec(timeUnixNano="-5")]), "error SX_OTLP_E_SCHEMA")
    write("json_structured_body", jreq([jrec(body={"kvlistValue": {"values": [
        {"key": "msg", "value": {"stringValue": "structured"}},
        {"key": "n", "value": {"arrayValue": {"values": [{"intValue": 1}, {"doubleValue": 2.5}]}}}]}})]),
        "ok kept=1 rejected=0 bodies_truncated=0")
    write("json_bytes_body", jreq([jrec(body={"bytesValue": "aGVsbG8="})]), "ok kept=1")
    write("json_long_body", jreq([jrec(body={"stringValue": "0123456789abcd\u20ac\u20ac\u20ac"})]),
          "limits max_log_body_len=16\nok kept=1 bodies_truncated=1 values_truncated=0\n"
          "reason 1 log body truncated to 16 bytes")
    write("json_long_structured_body", jreq([jrec(body={"arrayValue": {"values": [
        {"stringValue": "x" * 40}, {"stringValue": "y" * 40}, {"stringValue": "short"}]}})]),
        "limits max_log_body_len=16\nok kept=1 bodies_truncated=2")
    write("json_body_not_object", jreq([jrec(body="plain")]), "error SX_OTLP_E_SCHEMA")
    write("json_severity_name", jreq([jrec(severityNumber="SEVERITY_NUMBER_WARN")]), "ok kept=1")
    write("json_severity_unknown_name", jreq([jrec(severityNumber="LOUD")]), "error SX_OTLP_E_SCHEMA")
    write("json_severity_out_of_range", jreq([jrec(severityNumber=99)]),
          "# mapped to SEVERITY_NUMBER_UNSPECIFIED, record kept\nok kept=1 rejected=0")
    write("json_event_name", jreq([jrec(eventName="checkout.started")]), "ok kept=1")
    write("json_lone_surrogate", jreq([jrec(body={"stringValue": "a\ud800b"}, severityText="\udc00")]),
          "ok kept=1 rejected=0")
    with open(os.path.join(HERE, "json_bad_utf8.json"), "wb") as f:
        f.write(jreq([jrec(body={"stringValue": "XX"})]).replace('"XX"', '"bad \xff"').encode("latin-1"))
    with open(os.path.join(HERE, "json_bad_utf8.expect"), "w") as f:
        f.write("error SX_OTLP_E_JSON\n")
    write("json_syntax", jreq([jrec()])[:-3], "error SX_OTLP_E_JSON")
    write("json_empty_input", "", "error SX_OTLP_E_JSON")
    write("json_empty_object", "{}", "ok kept=0 rejected=0 resources=0")
    write("json_top_array", "[]", "error SX_OTLP_E_SCHEMA")
    write("json_records_not_array", json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": {}}]}]}),
          "error SX_OTLP_E_SCHEMA")
    deep = {"stringValue": "leaf"}
    for _ in range(40):
        deep = {"arrayValue": {"values": [deep]}}
    write("json_deep_body", jreq([jrec(body=deep)]), "error SX_OTLP_E_JSON_DEPTH")
    unknown = jrec()
    unknown["futureField"] = {"a": [1, {"b": [2, 3]}], "c": None}
    unknown["futureScalar"] = 7
    write("json_unknown_fields", jreq([unknown]), "ok kept=1 rejected=0")
    write("json_null_members", jreq([jrec(body=None, attributes=None, traceId=None) | {"body": None}]),
          "ok kept=1 rejected=0")
    write("json_too_many", jreq([jrec(), jrec(), jrec()]), "limits max_log_records=2\nerror SX_OTLP_E_TOO_MANY")
    write("json_at_limit", jreq([jrec(), jrec()]), "limits max_log_records=2\nok kept=2")
    write("json_over_attr_limits", jreq([jrec(attributes=[{"key": "a%d" % i, "value": {"intValue": i}}
                                                          for i in range(5)] + [{"key": "", "value": {}}])]),
          "limits max_attributes=2\nok kept=1 attrs_dropped=4\nreason 4 attributes dropped")
    write("json_long_attr_value", jreq([jrec(attributes=[{"key": "k", "value": {"stringValue": "v" * 40}}])]),
          "limits max_attr_value_len=16\nok kept=1 values_truncated=1 bodies_truncated=0")
    write("json_all_invalid", jreq([jrec(traceId="ab"), jrec(spanId="cd")]),
          "ok kept=0 rejected=2 resources=0\nreason 2 log records rejected")


# --- protobuf ------------------------------------------------------------------------

def pb_cases():
    write("pb_empty", b"", "ok kept=0 rejected=0 resources=0")
    write("pb_ok_three", request([record(), record(sev=13, text="WARN"), record(tid=b"", sid=b"")]),
          "ok kept=3 rejected=0 resources=1 count=3")
    fixture = os.path.join(FIX, "logs-proto.bin")
    if os.path.exists(fixture):
        with open(fixture, "rb") as f:
            data = f.read()
        write("pb_truncated", data[:len(data) // 2 + 3], "error SX_OTLP_E_PROTOBUF")
    write("pb_garbage", bytes(range(0xF0, 0x100)) * 4, "error SX_OTLP_E_PROTOBUF")
    write("pb_bad_wiretype", key(1, 7) + b"\x00\x00", "error SX_OTLP_E_PROTOBUF")
    write("pb_bad_ids", request([record(), record(tid=TID[:5]), record(sid=SID + b"\x01")]),
          "ok kept=1 rejected=2\nreason 2 log records rejected: invalid trace id")
    write("pb_zero_ids", request([record(tid=bytes(16), sid=bytes(8))]), "ok kept=1 rejected=0")
    write("pb_no_times", request([record(time=0, observed=0)]), "ok kept=1 rejected=0")
    write("pb_invalid_utf8", request([record(body=b"Gr\xc3\xb6\xc3\x9fe \xff", text=b"WA\xc0\x80RN",
                                             attrs=[kv(b"k\xfe", any_str(b"v\xc3"))])]),
          "ok kept=1 rejected=0")
    write("pb_deep_body", request([record(body=nested_any(200))]), "error SX_OTLP_E_PROTOBUF")
    write("pb_too_many", request([record(), record(), record()]), "limits max_log_records=2\nerror SX_OTLP_E_TOO_MANY")
    write("pb_long_body", request([record(body="0123456789abcd\u20ac\u20ac\u20ac")]),
          "limits max_log_body_len=16\nok kept=1 bodies_truncated=1\nreason log body truncated")
    write("pb_unknown_fields", request([record() + vint(99, 7) + ld(100, b"\x01\x02")]), "ok kept=1")
    write("pb_severity_out_of_range", request([record(sev=1000)]), "ok kept=1")


json_cases()
pb_cases()
