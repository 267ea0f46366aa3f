// otlp.mjs: the OTLP bits the end-to-end tests need, written from the public
// field numbers of opentelemetry-proto: a small protobuf writer (to build
// requests the SDK would never send: bad ids, end before start), a reader for
// the answers (ExportTraceServiceResponse, google.rpc.Status), the shared
// fixtures, id rewriting, and the expected waterfall order of a set of spans.

import { readFileSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(HERE, '../../..');

// ---------------------------------------------------------------- fixtures --

function fixturesDir() {
  const candidates = [
    process.env.SEXTANT_FIXTURES,
    path.join(REPO_ROOT, '..', 'shared', 'otlp-fixtures'),
    path.join(REPO_ROOT, 'tests', 'fixtures', 'otlp'),
  ].filter(Boolean);
  for (const dir of candidates) {
    if (existsSync(path.join(dir, 'traces-proto.bin'))) return dir;
  }
  throw new Error(`OTLP fixtures not found (looked in ${candidates.join(', ')}); set SEXTANT_FIXTURES`);
}

export const FIXTURES = fixturesDir();

/** Raw bytes of a fixture file. */
export function fixture(name) {
  return readFileSync(path.join(FIXTURES, name));
}

/** Parsed JSON fixture. */
export function fixtureJson(name) {
  return JSON.parse(fixture(name).toString('utf8'));
}

/** summary-proto.json: what the SDK run sent and what a backend should hold. */
export function fixtureSummary() {
  return fixtureJson('summary-proto.json');
}

/** Every span of an OTLP JSON request, with its resource's service.name. */
export function jsonSpans(req) {
  const out = [];
  for (const rs of req.resourceSpans ?? []) {
    const svcAttr = (rs.resource?.attributes ?? []).find((a) => a.key === 'service.name');
    const service = svcAttr?.value?.stringValue ?? null;
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) out.push({ ...s, service });
    }
  }
  return out;
}

/** traceId (hex) -> number of spans, for an OTLP JSON request. */
export function spanCountsByTrace(spans) {
  const m = new Map();
  for (const s of spans) m.set(s.traceId, (m.get(s.traceId) ?? 0) + 1);
  return m;
}

// ------------------------------------------------------------- id rewrite --

export function randomTraceId() {
  return randomBytes(16).toString('hex');
}
export function randomSpanId() {
  return randomBytes(8).toString('hex');
}

/** A fresh random trace id for every given one: Map old hex -> new hex. */
export function freshTraceIds(ids) {
  const m = new Map();
  for (const id of ids) m.set(id, randomTraceId());
  return m;
}

/** Deep copy of an OTLP JSON request with its trace ids replaced per map. */
export function rewriteJsonTraceIds(req, map) {
  const copy = structuredClone(req);
  for (const rs of copy.resourceSpans ?? []) {
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        if (map.has(s.traceId)) s.traceId = map.get(s.traceId);
        for (const l of s.links ?? []) if (map.has(l.traceId)) l.traceId = map.get(l.traceId);
      }
    }
  }
  return copy;
}

/** Copy of a protobuf body with every occurrence of each 16-byte trace id
 * replaced (ids are random, so a byte match is the id field itself). */
export function rewriteProtoTraceIds(buf, map) {
  const out = Buffer.from(buf);
  for (const [oldHex, newHex] of map) {
    const oldB = Buffer.from(oldHex, 'hex');
    const newB = Buffer.from(newHex, 'hex');
    let at = out.indexOf(oldB);
    if (at < 0) throw new Error(`trace id ${oldHex} not found in protobuf body`);
    while (at >= 0) {
      newB.copy(out, at);
      at = out.indexOf(oldB, at + 16);
    }
  }
  return out;
}

export function gzip(buf) {
  return zlib.gzipSync(buf);
}
export function gunzip(buf) {
  return zlib.gunzipSync(buf);
}

// ---------------------------------------------------------- protobuf write --

class PbWriter {
  constructor() {
    this.parts = [];
  }
  varint(v) {
    let n = BigInt.asUintN(64, BigInt(v));
    const bytes = [];
    do {
      let b = Number(n & 0x7fn);
      n >>= 7n;
      if (n) b |= 0x80;
      bytes.push(b);
    } while (n);
    this.parts.push(Buffer.from(bytes));
    return this;
  }
  tag(field, wt) {
    return this.varint((field << 3) | wt);
  }
  uint(field, v) {
    return this.tag(field, 0).varint(v);
  }
  fixed64(field, v) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)));
    this.tag(field, 1);
    this.parts.push(b);
    return this;
  }
  double(field, v) {
    const b = Buffer.alloc(8);
    b.writeDoubleLE(v);
    this.tag(field, 1);
    this.parts.push(b);
    return this;
  }
  fixed32(field, v) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    this.tag(field, 5);
    this.parts.push(b);
    return this;
  }
  bytes(field, buf) {
    this.tag(field, 2).varint(buf.length);
    this.parts.push(Buffer.from(buf));
    return this;
  }
  string(field, s) {
    return this.bytes(field, Buffer.from(s, 'utf8'));
  }
  message(field, fill) {
    const w = new PbWriter();
    fill(w);
    return this.bytes(field, w.finish());
  }
  finish() {
    return Buffer.concat(this.parts);
  }
}

function writeAnyValue(w, v) {
  if (typeof v === 'string') w.string(1, v);
  else if (typeof v === 'boolean') w.uint(2, v ? 1 : 0);
  else if (typeof v === 'bigint') w.uint(3, v);
  else if (typeof v === 'number' && Number.isInteger(v)) w.uint(3, v);
  else if (typeof v === 'number') w.double(4, v);
  else if (Array.isArray(v)) w.message(5, (a) => v.forEach((x) => a.message(1, (av) => writeAnyValue(av, x))));
  else throw new Error(`unsupported attribute value ${v}`);
}

function writeAttributes(w, field, attrs) {
  for (const [k, v] of Object.entries(attrs ?? {})) {
    w.message(field, (kv) => {
      kv.string(1, k);
      kv.message(2, (av) => writeAnyValue(av, v));
    });
  }
}

const hexOrBuf = (x) => (Buffer.isBuffer(x) ? x : Buffer.from(x, 'hex'));

/**
 * Encodes an ExportTraceServiceRequest. Input, one entry per resource:
 *   [{ resource: {attr: value}, scope: 'name', spans: [{ traceId, spanId,
 *      parentSpanId?, name, kind, start (ns, bigint|string), end, attributes,
 *      status?: {code, message} }] }]
 * ids are hex strings or Buffers (any length: the point is to send bad ones).
 */
export function encodeTraceRequest(resources) {
  const w = new PbWriter();
  for (const r of resources) {
    w.message(1, (rs) => {
      rs.message(1, (res) => writeAttributes(res, 1, r.resource));
      rs.message(2, (ss) => {
        ss.message(1, (sc) => sc.string(1, r.scope ?? 'sextant-e2e'));
        for (const s of r.spans) {
          ss.message(2, (sp) => {
            sp.bytes(1, hexOrBuf(s.traceId));
            sp.bytes(2, hexOrBuf(s.spanId));
            if (s.parentSpanId) sp.bytes(4, hexOrBuf(s.parentSpanId));
            sp.string(5, s.name);
            sp.uint(6, s.kind ?? 1);
            sp.fixed64(7, BigInt(s.start));
            sp.fixed64(8, BigInt(s.end));
            writeAttributes(sp, 9, s.attributes);
            if (s.status) {
              sp.message(15, (st) => {
                if (s.status.message) st.string(2, s.status.message);
                st.uint(3, s.status.code);
              });
            }
          });
        }
      });
    });
  }
  return w.finish();
}

/** The same request as OTLP JSON (hex ids, 64-bit numbers as strings). */
export function traceRequestJson(resources) {
  const anyValue = (v) => {
    if (typeof v === 'string') return { stringValue: v };
    if (typeof v === 'boolean') return { boolValue: v };
    if (typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v))) return { intValue: String(v) };
    if (typeof v === 'number') return { doubleValue: v };
    if (Array.isArray(v)) return { arrayValue: { values: v.map(anyValue) } };
    throw new Error(`unsupported attribute value ${v}`);
  };
  const attrs = (o) => Object.entries(o ?? {}).map(([key, v]) => ({ key, value: anyValue(v) }));
  const hex = (x) => (Buffer.isBuffer(x) ? x.toString('hex') : x);
  return {
    resourceSpans: resources.map((r) => ({
      resource: { attributes: attrs(r.resource) },
      scopeSpans: [
        {
          scope: { name: r.scope ?? 'sextant-e2e' },
          spans: r.spans.map((s) => ({
            traceId: hex(s.traceId),
            spanId: hex(s.spanId),
            ...(s.parentSpanId ? { parentSpanId: hex(s.parentSpanId) } : {}),
            name: s.name,
            kind: s.kind ?? 1,
            startTimeUnixNano: String(s.start),
            endTimeUnixNano: String(s.end),
            attributes: attrs(s.attributes),
            ...(s.status ? { status: s.status } : {}),
          })),
        },
      ],
    })),
  };
}

// ----------------------------------------------------------- protobuf read --

/** Decodes one protobuf message into Map field -> [{wt, value}] (no schema).
 * Throws on malformed input. value: BigInt for varints, Buffer otherwise. */
export function pbFields(buf) {
  const fields = new Map();
  let i = 0;
  const readVarint = () => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (i >= buf.length) throw new Error('truncated varint');
      const b = buf[i++];
      result |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return result;
      shift += 7n;
      if (shift > 63n) throw new Error('varint too long');
    }
  };
  while (i < buf.length) {
    const key = readVarint();
    const field = Number(key >> 3n);
    const wt = Number(key & 7n);
    let value;
    if (wt === 0) value = readVarint();
    else if (wt === 1 || wt === 5) {
      const n = wt === 1 ? 8 : 4;
      if (i + n > buf.length) throw new Error('truncated fixed field');
      value = buf.subarray(i, i + n);
      i += n;
    } else if (wt === 2) {
      const len = Number(readVarint());
      if (i + len > buf.length) throw new Error('truncated length-delimited field');
      value = buf.subarray(i, i + len);
      i += len;
    } else throw new Error(`unsupported wire type ${wt}`);
    if (field === 0) throw new Error('field number 0');
    if (!fields.has(field)) fields.set(field, []);
    fields.get(field).push({ wt, value });
  }
  return fields;
}

const first = (fields, n) => fields.get(n)?.[0]?.value;

/** ExportTraceServiceResponse -> {partialSuccess: null | {rejectedSpans, errorMessage}}. */
export function decodeExportTraceResponse(buf) {
  const f = pbFields(buf);
  const ps = first(f, 1);
  if (ps === undefined) return { partialSuccess: null };
  const p = pbFields(ps);
  return {
    partialSuccess: {
      rejectedSpans: Number(first(p, 1) ?? 0n),
      errorMessage: first(p, 2)?.toString('utf8') ?? '',
    },
  };
}

/** google.rpc.Status -> {code, message}. */
export function decodeRpcStatus(buf) {
  const f = pbFields(buf);
  return {
    code: Number(first(f, 1) ?? 0n),
    message: first(f, 2)?.toString('utf8') ?? '',
  };
}

/** Spans of a protobuf ExportTraceServiceRequest (ids hex, times as strings). */
export function decodeTraceRequestSpans(buf) {
  const spans = [];
  for (const { value: rs } of pbFields(buf).get(1) ?? []) {
    const rsf = pbFields(rs);
    let service = null;
    const res = first(rsf, 1);
    if (res) {
      for (const { value: kv } of pbFields(res).get(1) ?? []) {
        const kvf = pbFields(kv);
        if (first(kvf, 1)?.toString() === 'service.name') {
          service = first(pbFields(first(kvf, 2)), 1)?.toString() ?? null;
        }
      }
    }
    for (const { value: ss } of rsf.get(2) ?? []) {
      for (const { value: sp } of pbFields(ss).get(2) ?? []) {
        const f = pbFields(sp);
        const parent = first(f, 4);
        spans.push({
          traceId: first(f, 1)?.toString('hex') ?? '',
          spanId: first(f, 2)?.toString('hex') ?? '',
          parentSpanId: parent && parent.length ? parent.toString('hex') : '',
          name: first(f, 5)?.toString('utf8') ?? '',
          kind: Number(first(f, 6) ?? 0n),
          startTimeUnixNano: first(f, 7) ? first(f, 7).readBigUInt64LE().toString() : '0',
          endTimeUnixNano: first(f, 8) ? first(f, 8).readBigUInt64LE().toString() : '0',
          service,
        });
      }
    }
  }
  return spans;
}

// ---------------------------------------------------------- interpretation --

const KINDS = ['UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];
const STATUS = ['UNSET', 'OK', 'ERROR'];

/** Span kind as a name, whether the API gives 2, "SERVER" or "SPAN_KIND_SERVER". */
export function kindName(k) {
  if (typeof k === 'number') return KINDS[k] ?? `?${k}`;
  return String(k).toUpperCase().replace(/^SPAN_KIND_/, '');
}

/** Status code as a name, whether the API gives 2, "ERROR" or "STATUS_CODE_ERROR". */
export function statusName(c) {
  if (c === undefined || c === null) return 'UNSET';
  if (typeof c === 'number') return STATUS[c] ?? `?${c}`;
  return String(c).toUpperCase().replace(/^STATUS_CODE_/, '');
}

/** The empty parent of a root span, however the API spells it. */
export function isNoParent(p) {
  return p === undefined || p === null || p === '' || /^0+$/.test(p);
}

/**
 * Expected waterfall of a trace's spans (objects with spanId, parentSpanId,
 * startTimeUnixNano): depth first from each root, siblings by start time;
 * spans whose parent is not in the set come after the roots' trees, at depth 0.
 * Returns [{spanId, depth}].
 */
export function expectedWaterfall(spans) {
  const ids = new Set(spans.map((s) => s.spanId));
  const byStart = (a, b) => {
    const d = BigInt(a.startTimeUnixNano) - BigInt(b.startTimeUnixNano);
    return d < 0n ? -1 : d > 0n ? 1 : 0;
  };
  const children = new Map();
  for (const s of spans) {
    if (isNoParent(s.parentSpanId) || !ids.has(s.parentSpanId)) continue;
    if (!children.has(s.parentSpanId)) children.set(s.parentSpanId, []);
    children.get(s.parentSpanId).push(s);
  }
  const out = [];
  const walk = (s, depth) => {
    out.push({ spanId: s.spanId, depth });
    for (const c of (children.get(s.spanId) ?? []).sort(byStart)) walk(c, depth + 1);
  };
  for (const r of spans.filter((s) => isNoParent(s.parentSpanId)).sort(byStart)) walk(r, 0);
  for (const o of spans.filter((s) => !isNoParent(s.parentSpanId) && !ids.has(s.parentSpanId)).sort(byStart)) {
    walk(o, 0);
  }
  return out;
}

/** Attributes as a plain object, from either a JSON object or OTLP KeyValue list. */
export function attrsObject(a) {
  if (a === undefined || a === null) return {};
  if (!Array.isArray(a)) return a;
  const val = (v) => {
    if (v === null || typeof v !== 'object') return v;
    if ('stringValue' in v) return v.stringValue;
    if ('boolValue' in v) return v.boolValue;
    if ('intValue' in v) return Number(v.intValue);
    if ('doubleValue' in v) return v.doubleValue;
    if ('arrayValue' in v) return (v.arrayValue.values ?? []).map(val);
    return v;
  };
  return Object.fromEntries(a.map((kv) => [kv.key, val(kv.value)]));
}
