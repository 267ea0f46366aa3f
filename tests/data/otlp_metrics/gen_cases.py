#!/usr/bin/env python3
# gen_cases.py: writes the metrics decoder test cases of this folder: NAME.json
# or NAME.bin (protobuf, from a tiny hand-written encoder) and NAME.expect (see
# tests/unit/otlp_cases.h for the format). Rerun after editing a case:
#   python3 tests/data/otlp_metrics/gen_cases.py
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


def dbl(field, d):
    return key(field, 1) + struct.pack("<d", d)


def vint(field, n):
    return key(field, 0) + varint(n & 0xFFFFFFFFFFFFFFFF)


def kv(k, s):
    return ld(1, k) + ld(2, ld(1, s))


T0 = 1795316169598000000


def ndp(value=5, time=T0, attrs=(kv("http.route", "/checkout/:id"),)):
    b = b"".join(ld(7, a) for a in attrs) + f64(2, T0 - 3000000)
    if time:
        b += f64(3, time)
    return b + key(6, 1) + struct.pack("<q", value)


def hdp(counts=(0, 0, 5), bounds=(10.0, 100.0), time=T0):
    b = f64(2, T0 - 3000000)
    if time:
        b += f64(3, time)
    b += f64(4, sum(counts)) + dbl(5, 700.0)
    b += ld(6, b"".join(struct.pack("<Q", c) for c in counts)) if counts else b""
    b += ld(7, b"".join(struct.pack("<d", x) for x in bounds)) if bounds else b""
    return b + dbl(11, 120.0) + dbl(12, 160.0)


def metric(name, body):
    return (ld(1, name) if name is not None else b"") + ld(3, "ms") + body


def msum(points, monotonic=True):
    return ld(7, b"".join(ld(1, p) for p in points) + vint(2, 2) + vint(3, 1 if monotonic else 0))


def mgauge(points):
    return ld(5, b"".join(ld(1, p) for p in points))


def mhist(points):
    return ld(9, b"".join(ld(1, p) for p in points) + vint(2, 2))


def request(metrics):
    res = ld(1, kv("service.name", "checkout-api"))
    sm = ld(1, ld(1, "test")) + b"".join(ld(2, m) for m in metrics)
    return ld(1, ld(1, res) + ld(2, sm))


def write(name, data, expect):
    ext = ".bin" if isinstance(data, bytes) else ".json"
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(os.path.join(HERE, name + ext), mode) as f:
        f.write(data)
    with open(os.path.join(HERE, name + ".expect"), "w") as f:
        f.write(expect.strip() + "\n")


# --- JSON ----------------------------------------------------------------------------

ATTRS = [{"key": "http.route", "value": {"stringValue": "/checkout/:id"}}]
TS = {"startTimeUnixNano": "1795316169595000000", "timeUnixNano": "1795316169598000000"}


def jpt(**over):
    p = dict(TS, attributes=ATTRS)
    for k, v in over.items():
        if v is None:
            p.pop(k, None)
        else:
            p[k] = v
    return p


def jhist(**over):
    return jpt(**dict(dict(count="5", sum=700, min=120, max=160, bucketCounts=["0", 0, "5"],
                           explicitBounds=[10, 100]), **over))


def jreq(metrics):
    return json.dumps({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout-api"}}]},
        "scopeMetrics": [{"scope": {"name": "test", "version": "1"}, "metrics": metrics}]}]})


def jsum(points, name="http.server.requests"):
    return {"name": name, "unit": "{request}", "sum": {"aggregationTemporality": 2, "isMonotonic": True,
                                                       "dataPoints": points}}


def jhistm(points, name="http.server.request.duration"):
    return {"name": name, "unit": "ms", "histogram": {"aggregationTemporality": 2, "dataPoints": points}}


EXEMPLAR = {"timeUnixNano": "1795316169597000000", "asDouble": 131.5,
            "traceId": "5654e161600dfb2ffdfaf7d91808ac81", "spanId": "b02cb7489ca21563",
            "filteredAttributes": [{"key": "user", "value": {"stringValue": "u1"}}]}


def json_cases():
    all_kinds = [
        jsum([jpt(asInt="5", exemplars=[EXEMPLAR]), jpt(asInt=7)]),
        {"name": "checkout.carts.open", "sum": {"aggregationTemporality": "AGGREGATION_TEMPORALITY_CUMULATIVE",
                                                "isMonotonic": False, "dataPoints": [jpt(asDouble=4)]}},
        {"name": "process.memory.usage", "unit": "By", "gauge": {"dataPoints": [jpt(asDouble="64229376")]}},
        jhistm([jhist(exemplars=[EXEMPLAR])]),
        {"name": "latency.exp", "exponentialHistogram": {"aggregationTemporality": 1, "dataPoints": [jpt(
            count="10", sum=55.5, scale=-3, zeroCount="1", zeroThreshold=0.001, min=0.5, max=20,
            positive={"offset": -2, "bucketCounts": ["1", 2, "3"]}, negative={"offset": 1, "bucketCounts": [3]},
            exemplars=[EXEMPLAR])]}},
        {"name": "rpc.latency.summary", "summary": {"dataPoints": [jpt(count=4, sum=10.5, quantileValues=[
            {"quantile": 0.5, "value": 2}, {"quantile": 0.99, "value": "4.5"}])]}},
    ]
    write("json_all_kinds", jreq(all_kinds), "ok kept=7 rejected=0 metrics_dropped=0 count=7")
    write("json_snake_case", json.dumps({"resource_metrics": [{"scope_metrics": [{"metrics": [{
        "name": "m", "histogram": {"aggregation_temporality": 2, "data_points": [{
            "time_unix_nano": "1795316169598000000", "count": 1, "bucket_counts": [1, 0],
            "explicit_bounds": [5]}]}}]}]}]}), "ok kept=1 rejected=0")
    write("json_bucket_mismatch", jreq([jhistm([jhist(), jhist(bucketCounts=[1, 2])])]),
          "ok kept=1 rejected=1\nreason 1 data point rejected: histogram bucket counts do not match its bounds")
    write("json_bounds_not_increasing", jreq([jhistm([jhist(explicitBounds=[100, 10])])]),
          "ok kept=0 rejected=1 resources=0\nreason histogram bounds not increasing")
    write("json_bounds_nan", jreq([jhistm([jhist(explicitBounds=["NaN", 10])])]),
          "ok kept=0 rejected=1\nreason histogram bounds not increasing")
    write("json_hist_no_buckets", jreq([jhistm([jhist(bucketCounts=None, explicitBounds=None)])]),
          "ok kept=1 rejected=0")
    write("json_hist_bounds_without_counts", jreq([jhistm([jhist(bucketCounts=[], explicitBounds=[1, 2])])]),
          "ok kept=0 rejected=1")
    write("json_no_name", jreq([jsum([jpt(asInt=1), jpt(asInt=2)], name=None), jsum([jpt(asInt=3)])]),
          "ok kept=1 rejected=2 metrics_dropped=1\nreason 1 metric dropped: metric without a name")
    write("json_empty_name", jreq([jsum([jpt(asInt=1)], name="")]),
          "ok kept=0 rejected=1 metrics_dropped=1 resources=0\nreason metric without a name")
    write("json_no_data", jreq([{"name": "nothing", "unit": "1"}, jsum([jpt(asInt=3)])]),
          "ok kept=1 rejected=0 metrics_dropped=1\nreason 1 metric dropped: metric without data")
    write("json_no_time", jreq([jsum([jpt(asInt=1), jpt(asInt=2, timeUnixNano=None)])]),
          "ok kept=1 rejected=1\nreason 1 data point rejected: data point without a time")
    write("json_zero_time", jreq([jhistm([jhist(timeUnixNano="0")])]), "ok kept=0 rejected=1 resources=0")
    write("json_empty_points", jreq([jsum([])]), "ok kept=0 rejected=0 metrics_dropped=0 resources=0")
    write("json_numbers_as_strings", jreq([jsum([jpt(asInt="-9223372036854775808")]),
                                           jhistm([jhist(count="5", sum="700", bucketCounts=["0", "0", "5"])])]),
          "ok kept=2")
    write("json_bad_bucket_count", jreq([jhistm([jhist(bucketCounts=["x", 0, 5])])]), "error SX_OTLP_E_SCHEMA")
    write("json_negative_bucket_count", jreq([jhistm([jhist(bucketCounts=[-1, 0, 5])])]), "error SX_OTLP_E_SCHEMA")
    write("json_bucket_counts_scalar", jreq([jhistm([jhist(bucketCounts=5)])]), "error SX_OTLP_E_SCHEMA")
    write("json_bucket_counts_objects", jreq([jhistm([jhist(bucketCounts=[{}])])]), "error SX_OTLP_E_SCHEMA")
    write("json_nested_arrays", jreq([jhistm([jhist(bucketCounts=[[1]])])]), "error SX_OTLP_E_SCHEMA")
    write("json_special_doubles", jreq([{"name": "g", "gauge": {"dataPoints": [
        jpt(asDouble="NaN"), jpt(asDouble="Infinity"), jpt(asDouble="-Infinity")]}}]), "ok kept=3")
    write("json_int_overflow", jreq([jsum([jpt(asInt="9223372036854775808")])]), "error SX_OTLP_E_SCHEMA")
    write("json_temporality_unknown", jreq([{"name": "s", "sum": {"aggregationTemporality": "SOMETIMES",
                                                                  "dataPoints": [jpt(asInt=1)]}}]),
          "error SX_OTLP_E_SCHEMA")
    write("json_monotonic_string", jreq([{"name": "s", "sum": {"isMonotonic": "true", "dataPoints": [jpt(asInt=1)]}}]),
          "ok kept=1")
    write("json_bad_exemplar_ids", jreq([jsum([jpt(asInt=1, exemplars=[dict(EXEMPLAR, spanId="abcdef"),
                                                                       dict(EXEMPLAR, traceId="")])])]),
          "# exemplars with bad ids keep their value, not the ids\nok kept=1 rejected=0")
    write("json_exemplar_odd_id", jreq([jsum([jpt(asInt=1, exemplars=[dict(EXEMPLAR, spanId="abc")])])]),
          "error SX_OTLP_E_SCHEMA")
    write("json_too_many", jreq([jsum([jpt(asInt=1), jpt(asInt=2)]), jhistm([jhist()])]),
          "limits max_points=2\nerror SX_OTLP_E_TOO_MANY")
    write("json_at_limit", jreq([jsum([jpt(asInt=1)]), jhistm([jhist()])]), "limits max_points=2\nok kept=2")
    write("json_attr_limits", jreq([jsum([jpt(asInt=1, attributes=ATTRS + [
        {"key": "a%d" % i, "value": {"intValue": i}} for i in range(3)])])]),
          "limits max_attributes=2\nok kept=1 attrs_dropped=2")
    write("json_lone_surrogate", jreq([jsum([jpt(asInt=1)], name="bad\udc00name")]), "ok kept=1")
    with open(os.path.join(HERE, "json_bad_utf8.json"), "wb") as f:
        f.write(jreq([jsum([jpt(asInt=1)], name="XX")]).replace('"XX"', '"bad \xff"').encode("latin-1"))
    with open(os.path.join(HERE, "json_bad_utf8.expect"), "w") as f:
        f.write("error SX_OTLP_E_JSON\n")
    write("json_syntax", jreq([jsum([jpt(asInt=1)])])[:-2], "error SX_OTLP_E_JSON")
    write("json_empty_object", "{}", "ok kept=0 rejected=0 resources=0")
    write("json_top_string", '"metrics"', "error SX_OTLP_E_SCHEMA")
    write("json_sum_not_object", jreq([{"name": "s", "sum": 5}]), "error SX_OTLP_E_SCHEMA")
    deep = {"stringValue": "leaf"}
    for _ in range(40):
        deep = {"kvlistValue": {"values": [{"key": "k", "value": deep}]}}
    write("json_deep_attr", jreq([jsum([jpt(asInt=1, attributes=[{"key": "d", "value": deep}])])]),
          "error SX_OTLP_E_JSON_DEPTH")
    unknown = jsum([dict(jpt(asInt=1), future={"x": [1, 2, {"y": None}]})])
    unknown["futureKind"] = {"dataPoints": [{"a": 1}]}
    write("json_unknown_fields", jreq([unknown]), "ok kept=1")
    write("json_two_kinds", jreq([{"name": "both", "gauge": {"dataPoints": [jpt(asDouble=1)]},
                                   "sum": {"dataPoints": [jpt(asInt=2), jpt(asInt=3)]}}]),
          "# the last member of the data oneof wins, as for protobuf\nok kept=2")
    write("json_null_members", jreq([{"name": "n", "unit": None, "gauge": {"dataPoints": [
        jpt(asDouble=None, exemplars=None, attributes=None) | {"asDouble": None}]}}]), "ok kept=1")


# --- protobuf ------------------------------------------------------------------------

def pb_cases():
    write("pb_empty", b"", "ok kept=0 rejected=0 resources=0")
    write("pb_ok", request([metric("http.server.requests", msum([ndp(5), ndp(7)])),
                            metric("process.memory.usage", mgauge([ndp(64)])),
                            metric("http.server.request.duration", mhist([hdp()]))]),
          "ok kept=4 rejected=0 count=4")
    fixture = os.path.join(FIX, "metrics-2-proto.bin")
    if os.path.exists(fixture):
        with open(fixture, "rb") as f:
            data = f.read()
        write("pb_truncated", data[:len(data) // 2 + 1], "error SX_OTLP_E_PROTOBUF")
    write("pb_garbage", bytes(range(0xF0, 0x100)) * 4, "error SX_OTLP_E_PROTOBUF")
    write("pb_bucket_mismatch", request([metric("h", mhist([hdp(), hdp(counts=(1, 2, 3, 4))]))]),
          "ok kept=1 rejected=1\nreason histogram bucket counts do not match its bounds")
    write("pb_no_name", request([metric(None, msum([ndp(1), ndp(2), ndp(3)])), metric("ok", mgauge([ndp(1)]))]),
          "ok kept=1 rejected=3 metrics_dropped=1\nreason metric without a name")
    write("pb_no_data", request([metric("nothing", b"")]),
          "ok kept=0 rejected=0 metrics_dropped=1 resources=0\nreason metric without data")
    write("pb_no_time", request([metric("s", msum([ndp(1, time=0), ndp(2)]))]),
          "ok kept=1 rejected=1\nreason data point without a time")
    write("pb_too_many", request([metric("s", msum([ndp(1), ndp(2)])), metric("h", mhist([hdp()]))]),
          "limits max_points=2\nerror SX_OTLP_E_TOO_MANY")
    write("pb_invalid_utf8", request([metric(b"bad \xff name", msum([ndp(1, attrs=[kv(b"k\xfe", b"v\xc3")])]))]),
          "ok kept=1 rejected=0")
    write("pb_unknown_fields", request([metric("s", msum([ndp(1) + vint(99, 7)])) + ld(100, b"\x01")]), "ok kept=1")
    write("pb_deep_nesting", request([metric("s", msum([ndp(1, attrs=[ld(1, "k") + ld(2, deep_any(200))])]))]),
          "error SX_OTLP_E_PROTOBUF")


def deep_any(levels):
    v = ld(1, "leaf")
    for _ in range(levels):
        v = ld(5, ld(1, v))
    return v


json_cases()
pb_cases()
