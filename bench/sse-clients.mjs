// sse-clients.mjs: the live-stream phase of `make bench` (scripts/bench.sh; also alone, see
// bench/README.md). Opens N concurrent streams (GET .../stream?topics=logs&q=sxbench) through
// nginx on one sextant-sse process, then POSTs one small OTLP/JSON log record to /v1/logs
// every 1/RATE s for SECONDS s. Each record's body names its sequence number; every stream
// notes when it receives it, so ingest-to-client latency is measured from the POST being
// sent to the event arriving at each client (same process, monotonic clock), through
// nginx, sextant-ingest, Redis, sextant-persist (COMMIT), the live stream, sextant-sse's
// one reader and fan-out, and nginx again. Node built-ins only.
//
//   node bench/sse-clients.mjs '<plan JSON>'
//   plan: {streamUrl, token, ingestUrl, key, ca (PEM path), streams, seconds, rate, settleMs}
// Prints one JSON line: streams opened, records sent, deliveries expected and received,
// gaps, p50/p95/p99/max latency in ms, and the open/settle times.

import https from 'node:https';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const plan = JSON.parse(process.argv[2] ?? '{}');
const N = plan.streams ?? 1000;
const SECONDS = plan.seconds ?? 20;
const RATE = plan.rate ?? 5;
const ca = readFileSync(plan.ca);
const agent = new https.Agent({ ca, keepAlive: false, maxSockets: Infinity });
const ingestAgent = new https.Agent({ ca, keepAlive: true, maxSockets: 4 });

const sentAt = new Map(); // seq -> performance.now() when the POST started
const latencies = [];
let gaps = 0;
let errors = 0;
const streams = [];

function openStream(i) {
  return new Promise((resolve, reject) => {
    const u = new URL(plan.streamUrl);
    u.searchParams.set('topics', 'logs');
    u.searchParams.set('q', 'sxbench');
    const req = https.request(u, { agent, headers: { Authorization: `Bearer ${plan.token}`, Accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`stream ${i}: HTTP ${res.statusCode}`));
        res.resume();
        return;
      }
      res.setEncoding('utf8');
      let buf = '';
      let opened = false;
      res.on('data', (chunk) => {
        const now = performance.now();
        buf += chunk;
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          if (!opened && frame.startsWith('retry:')) {
            opened = true;
            resolve({ req, res });
            continue;
          }
          if (frame.includes('event: gap')) gaps++;
          const d = frame.indexOf('data: ');
          if (d < 0 || !frame.includes('event: logs')) continue;
          for (const m of frame.slice(d + 6).matchAll(/sxbench (\d+)/g)) {
            const t0 = sentAt.get(Number(m[1]));
            if (t0 !== undefined) latencies.push(now - t0);
          }
        }
      });
      res.on('error', () => { errors++; });
    });
    req.on('error', (e) => reject(e));
    req.end();
  });
}

function postLog(seq) {
  const body = JSON.stringify({ resourceLogs: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'bench-sse' } }] },
    scopeLogs: [{ logRecords: [{ timeUnixNano: `${Date.now()}000000`, severityNumber: 9, severityText: 'INFO',
      body: { stringValue: `sxbench ${seq}` } }] }] }] });
  return new Promise((resolve) => {
    sentAt.set(seq, performance.now());
    const req = https.request(plan.ingestUrl, { method: 'POST', agent: ingestAgent,
      headers: { 'Content-Type': 'application/json', 'X-API-Key': plan.key, 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (arr, p) => (arr.length ? arr[Math.min(arr.length - 1, Math.floor((p / 100) * arr.length))] : null);

const t0 = performance.now();
// Open in waves of 50: a thousand TLS handshakes at once only measure the handshake queue.
for (let i = 0; i < N; i += 50) {
  const wave = [];
  for (let j = i; j < Math.min(N, i + 50); j++) wave.push(openStream(j));
  streams.push(...await Promise.all(wave));
}
const openMs = performance.now() - t0;
await sleep(plan.settleMs ?? 3000); // producers look the watch key up every 2 s

let sent = 0;
let refused = 0;
const pending = [];
const interval = 1000 / RATE;
const start = performance.now();
for (let seq = 0; performance.now() - start < SECONDS * 1000; seq++) {
  const due = start + seq * interval;
  const wait = due - performance.now();
  if (wait > 0) await sleep(wait);
  pending.push(postLog(seq).then((st) => { if (st !== 200) refused++; }));
  sent++;
}
await Promise.all(pending);
// Let the last records arrive (at most 10 s).
const expected = (sent - refused) * N;
for (let i = 0; i < 100 && latencies.length < expected; i++) await sleep(100);
latencies.sort((a, b) => a - b);
const r2 = (x) => (x === null ? null : Math.round(x * 10) / 10);
console.log(JSON.stringify({ streams: streams.length, openMs: Math.round(openMs), sent, refused, expected,
  received: latencies.length, gaps, errors, p50: r2(pct(latencies, 50)), p95: r2(pct(latencies, 95)),
  p99: r2(pct(latencies, 99)), max: r2(latencies[latencies.length - 1] ?? null) }));
for (const s of streams) s.req.destroy();
process.exit(0);
