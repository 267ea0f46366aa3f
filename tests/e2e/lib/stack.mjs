// stack.mjs: one throwaway Sextant stack per test file (scripts/stack.sh up in a
// temp SEXTANT_HOME on a free loopback port), plus the helpers every e2e test
// uses: raw HTTPS requests with the stack's CA, API GETs with a token,
// sextantctl, stack.sh control of single services, psql, polling, and log
// tails printed when a test fails.
//
// Environment:
//   SEXTANT_TEST_BIN   programs to run: default build-san/bin (sanitized);
//                      "bin" (or any dir, relative to the repo) to use another
//   SEXTANT_E2E_KEEP=1 keep the temp SEXTANT_HOME even when every test passed
//   SEXTANT_FIXTURES   the otlp-fixtures dir (default ../shared/otlp-fixtures)

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, existsSync, rmSync, chmodSync, statSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test as nodeTest, before, after } from 'node:test';
import { REPO_ROOT } from './otlp.mjs';

export { REPO_ROOT };
export const STACK_SH = path.join(REPO_ROOT, 'scripts', 'stack.sh');

const STACK_UP_TIMEOUT_MS = 180_000;
const STACK_CMD_TIMEOUT_MS = 60_000;

// ------------------------------------------------------------------ basics --

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A free TCP port on 127.0.0.1 (bound then released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Runs a command; resolves {code, signal, stdout, stderr} (never rejects on exit code). */
export function run(cmd, args, { env = process.env, timeoutMs = STACK_CMD_TIMEOUT_MS, input, cwd = REPO_ROOT } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code: timedOut ? null : code,
        signal,
        timedOut,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
  });
}

function describeRun(what, r) {
  return `${what}: ${r.timedOut ? 'timed out' : `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}`}\n` +
    `--- stdout ---\n${r.stdout.slice(-4000)}\n--- stderr ---\n${r.stderr.slice(-4000)}`;
}

/**
 * Retries fn until it resolves without throwing (assertions inside), or the
 * deadline passes: then rethrows fn's last error with the waiting time noted.
 * This is how tests wait for asynchronous persistence: what is asserted is the
 * final state, never how long it took.
 */
export async function eventually(fn, { timeoutMs = 20_000, intervalMs = 250, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastErr;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() >= deadline) {
      const msg = `${what} still not met after ${timeoutMs} ms: ${lastErr?.message ?? lastErr}`;
      const e = new Error(msg, { cause: lastErr });
      if (lastErr?.stack) e.stack = `${msg}\n${lastErr.stack}`;
      throw e;
    }
    await sleep(intervalMs);
  }
}

// ------------------------------------------------------------------- files --

/** Parses KEY=VALUE lines (optionally "export ", optionally quoted). */
export function parseEnvFile(text) {
  const env = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2].trim();
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    env[m[1]] = v;
  }
  return env;
}

/** Parses sextant.conf ("name value" lines, '#' comments, optional quotes). */
export function parseConfig(text) {
  const conf = {};
  for (const raw of text.split('\n')) {
    const line = raw.replace(/^\s+/, '');
    if (!line || line.startsWith('#')) continue;
    const m = /^(\S+)\s+(.*?)\s*$/.exec(line);
    if (!m) continue;
    let v = m[2];
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    conf[m[1]] = v;
  }
  return conf;
}

function tail(text, lines) {
  const all = text.split('\n');
  return all.slice(Math.max(0, all.length - lines - 1)).join('\n');
}

// Sanitizer reports that mean a product bug (ASan, UBSan, LeakSanitizer).
const SANITIZER_RE = /(ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|WARNING: ThreadSanitizer|SUMMARY: (Address|Undefined|Leak)Sanitizer)/;

// -------------------------------------------------------------------- stack --

// SEXTANT_TEST_BIN, else SEXTANT_BIN (scripts/run-tests.sh sets it), else build-san/bin.
function resolveBinDir() {
  const want = process.env.SEXTANT_TEST_BIN || process.env.SEXTANT_BIN || 'build-san/bin';
  const dir = path.isAbsolute(want) ? want : path.join(REPO_ROOT, want);
  return dir;
}

export class Stack {
  constructor(label, { extraConf } = {}) {
    this.label = label;
    this.extraConf = extraConf;
    this.binDir = resolveBinDir();
    this.failed = false;
    this.up = false;
  }

  /** scripts/stack.sh up in a fresh SEXTANT_HOME; reads demo.env. */
  async start() {
    if (!existsSync(STACK_SH)) throw new Error(`${STACK_SH} does not exist yet`);
    for (const p of ['sextant-ingest', 'sextant-api', 'sextant-persist', 'sextant-rollup', 'sextantctl']) {
      if (!existsSync(path.join(this.binDir, p))) {
        throw new Error(`${path.join(this.binDir, p)} missing: build it (make SANITIZER=address,undefined all) ` +
          'or set SEXTANT_TEST_BIN=bin');
      }
    }
    // Under $TMPDIR when short (scripts/run-tests.sh gives each run a private one),
    // else /tmp: unix socket paths are limited to 107 bytes, and the postgres
    // user must be able to traverse every parent.
    const tmp = os.tmpdir();
    const base = tmp.length <= 40 && tmp !== '/' ? tmp : '/tmp';
    this.home = mkdtempSync(path.join(base, `sx-e2e-${this.label}-`));
    chmodSync(this.home, 0o755);
    this.port = await freePort();
    this.env = { ...process.env, SEXTANT_HOME: this.home, SEXTANT_PORT: String(this.port), SEXTANT_BIN: this.binDir };
    delete this.env.SEXTANT_CONFIG;
    delete this.env.NODE_TEST_CONTEXT;
    if (this.extraConf) this.env.SEXTANT_EXTRA_CONF = this.extraConf;
    else delete this.env.SEXTANT_EXTRA_CONF;

    const r = await run(STACK_SH, ['up'], { env: this.env, timeoutMs: STACK_UP_TIMEOUT_MS });
    this.upOutput = r;
    if (r.code !== 0) {
      this.failed = true;
      const logs = this.logTails(60);
      await run(STACK_SH, ['down'], { env: this.env }).catch(() => {});
      throw new Error(`${describeRun('scripts/stack.sh up', r)}\n${logs}`);
    }
    this.up = true;
    const envFile = path.join(this.home, 'demo.env');
    if (!existsSync(envFile)) throw new Error(`stack.sh up succeeded but wrote no ${envFile}`);
    this.demo = parseEnvFile(readFileSync(envFile, 'utf8'));
    for (const k of ['SEXTANT_URL', 'SEXTANT_OTLP_ENDPOINT', 'SEXTANT_INGEST_KEY', 'SEXTANT_TOKEN',
      'SEXTANT_PROJECT', 'SEXTANT_PROJECT_ID', 'SEXTANT_CA', 'SEXTANT_CONFIG']) {
      if (!this.demo[k]) throw new Error(`demo.env lacks ${k}: ${JSON.stringify(this.demo)}`);
    }
    this.env.SEXTANT_CONFIG = this.demo.SEXTANT_CONFIG;
    this.ca = readFileSync(this.demo.SEXTANT_CA);
    this.agent = new https.Agent({ ca: this.ca, keepAlive: false });
    this.url = new URL(this.demo.SEXTANT_URL);
    this.otlpTracesUrl = new URL(this.demo.SEXTANT_OTLP_ENDPOINT.replace(/\/+$/, '') + '/v1/traces');
    this.apiBase = new URL('/api/v1/', this.url.origin);
    this.ingestKey = this.demo.SEXTANT_INGEST_KEY;
    this.token = this.demo.SEXTANT_TOKEN;
    this.project = this.demo.SEXTANT_PROJECT;
    this.projectId = this.demo.SEXTANT_PROJECT_ID;
    return this;
  }

  /** scripts/stack.sh down, then destroy (data too) unless a test failed:
   * then the files stay for a look and their place is printed. */
  async stop() {
    if (!this.home) return;
    const problems = [];
    if (this.up) {
      const r = await run(STACK_SH, ['down'], { env: this.env });
      if (r.code !== 0) problems.push(describeRun('scripts/stack.sh down', r));
      this.up = false;
    }
    const san = this.sanitizerReports();
    if (san) problems.push(`sanitizer reports in the stack's logs:\n${san}`);
    if (this.failed || problems.length || process.env.SEXTANT_E2E_KEEP) {
      process.stderr.write(`[e2e ${this.label}] stack files kept in ${this.home}\n`);
    } else {
      await run(STACK_SH, ['destroy'], { env: this.env });
      rmSync(this.home, { recursive: true, force: true });
    }
    if (problems.length) throw new Error(problems.join('\n\n'));
  }

  logFiles() {
    const dir = path.join(this.home ?? '/nonexistent', 'log');
    if (!existsSync(dir)) return [];
    return readdirSync(dir).filter((f) => f.endsWith('.log')).sort().map((f) => path.join(dir, f));
  }

  /** Last lines of every $SEXTANT_HOME/log/*.log. */
  logTails(lines = 40) {
    const parts = [];
    for (const f of this.logFiles()) {
      let text = '';
      try {
        text = readFileSync(f, 'utf8');
      } catch (e) {
        text = `(unreadable: ${e.message})`;
      }
      parts.push(`----- ${f} (last ${lines} lines) -----\n${tail(text, lines)}`);
    }
    return parts.length ? parts.join('\n') : `(no logs under ${this.home}/log)`;
  }

  /** Lines around sanitizer reports in the logs, or '' if none. */
  sanitizerReports() {
    const found = [];
    for (const f of this.logFiles()) {
      const text = readFileSync(f, 'utf8');
      if (!SANITIZER_RE.test(text)) continue;
      const lines = text.split('\n');
      const i = lines.findIndex((l) => SANITIZER_RE.test(l));
      found.push(`${f}:\n${lines.slice(Math.max(0, i - 2), i + 30).join('\n')}`);
    }
    return found.join('\n\n');
  }

  dumpLogs(why) {
    process.stderr.write(`\n[e2e ${this.label}] ${why}: log tails of ${this.home}\n${this.logTails(40)}\n`);
  }

  // ---------------------------------------------------------------- HTTP --

  /**
   * One HTTPS request through nginx. url: a URL or a path on the stack's
   * origin. body: Buffer/string; chunked: send without Content-Length, in
   * pieces (as the SDK does). Resolves {status, headers, body: Buffer, text,
   * json()} — json() throws when the body is not JSON.
   */
  request(method, url, { headers = {}, body, chunked = false, chunkSize = 16384 } = {}) {
    const u = url instanceof URL ? url : new URL(url, this.url.origin);
    return new Promise((resolve, reject) => {
      const hdrs = { ...headers };
      const data = body === undefined ? null : Buffer.isBuffer(body) ? body : Buffer.from(body);
      if (data && !chunked) hdrs['Content-Length'] = String(data.length);
      let settled = false;
      const req = https.request(u, { method, headers: hdrs, agent: this.agent }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', (e) => {
          if (!settled) {
            settled = true;
            reject(e);
          }
        });
        res.on('end', () => {
          if (settled) return;
          settled = true;
          const buf = Buffer.concat(chunks);
          const text = buf.toString('utf8');
          resolve({
            status: res.statusCode,
            headers: res.headers,
            body: buf,
            text,
            json() {
              try {
                return JSON.parse(text);
              } catch (e) {
                throw new Error(`${method} ${u.pathname}: answer ${res.statusCode} is not JSON: ${text.slice(0, 300)}`);
              }
            },
          });
        });
      });
      req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${u.href}: no answer within 30 s`)));
      req.on('error', (e) => {
        if (!settled) {
          settled = true;
          reject(new Error(`${method} ${u.href}: ${e.message}`, { cause: e }));
        }
      });
      if (!data) return req.end();
      if (!chunked) return req.end(data);
      // Chunked: write piece by piece, waiting for drain; stop early if the
      // server already answered (nginx may answer 413 before the end).
      (async () => {
        for (let i = 0; i < data.length && !settled && !req.destroyed; i += chunkSize) {
          const ok = req.write(data.subarray(i, i + chunkSize));
          if (!ok) {
            await new Promise((r) => {
              const done = () => {
                req.off('drain', done);
                req.off('close', done);
                r();
              };
              req.on('drain', done);
              req.on('close', done);
            });
          }
        }
        if (!req.destroyed) req.end();
      })();
    });
  }

  /**
   * POST /v1/traces. opts: contentType (default protobuf), encoding ('gzip'
   * or none), key (default the demo key; null for none), keyHeader
   * ('x-api-key' | 'bearer'), chunked, headers (extra).
   */
  ingest(body, { contentType = 'application/x-protobuf', encoding, key = this.ingestKey, keyHeader = 'x-api-key',
    chunked = false, headers = {}, method = 'POST' } = {}) {
    const h = { ...headers };
    if (contentType) h['Content-Type'] = contentType;
    if (encoding) h['Content-Encoding'] = encoding;
    if (key !== null && key !== undefined) {
      if (keyHeader === 'bearer') h.Authorization = `Bearer ${key}`;
      else h['X-API-Key'] = key;
    }
    return this.request(method, this.otlpTracesUrl, { headers: h, body, chunked });
  }

  /**
   * GET /api/v1/<p>. query: object (array values repeat the parameter) or
   * URLSearchParams. token: default the demo token; null sends none.
   */
  async api(p, { query, token = this.token, headers = {} } = {}) {
    const u = new URL(p.replace(/^\/+/, ''), this.apiBase);
    if (query) {
      const entries = query instanceof URLSearchParams ? [...query] : Object.entries(query);
      for (const [k, v] of entries) {
        if (v === undefined || v === null) continue;
        for (const one of Array.isArray(v) ? v : [v]) u.searchParams.append(k, String(one));
      }
    }
    const h = { Accept: 'application/json', ...headers };
    if (token) h.Authorization = `Bearer ${token}`;
    return this.request('GET', u, { headers: h });
  }

  /** GET a project's trace list; throws unless 200. Returns the parsed body. */
  async traces(query, { project = this.project, token } = {}) {
    const r = await this.api(`projects/${encodeURIComponent(project)}/traces`, { query, token });
    if (r.status !== 200) throw new Error(`GET traces ${JSON.stringify(query)}: ${r.status} ${r.text.slice(0, 500)}`);
    const body = r.json();
    if (!Array.isArray(body.traces)) throw new Error(`trace list without a traces array: ${r.text.slice(0, 500)}`);
    return body;
  }

  /** Every page of a trace list (follows nextCursor); returns all traces and the page sizes. */
  async allTraces(query, opts = {}) {
    const traces = [];
    const pages = [];
    let cursor;
    for (let i = 0; i < 1000; i++) {
      const body = await this.traces({ ...query, cursor }, opts);
      traces.push(...body.traces);
      pages.push(body.traces.length);
      if (body.nextCursor === null || body.nextCursor === undefined || body.nextCursor === '') {
        return { traces, pages };
      }
      if (body.nextCursor === cursor) throw new Error(`nextCursor repeats itself: ${cursor}`);
      cursor = body.nextCursor;
    }
    throw new Error('more than 1000 pages');
  }

  /** GET a trace; returns the raw answer. */
  trace(traceId, { project = this.project, token } = {}) {
    return this.api(`projects/${encodeURIComponent(project)}/traces/${traceId}`, { token });
  }

  // ---------------------------------------------------------- processes --

  /** bin/sextantctl --config <stack config> args...; parsed JSON stdout (throws on exit != 0). */
  async ctl(...args) {
    const r = await this.ctlRaw(...args);
    if (r.code !== 0) throw new Error(describeRun(`sextantctl ${args.join(' ')}`, r));
    const out = r.stdout.trim();
    try {
      return out ? JSON.parse(out) : null;
    } catch {
      throw new Error(`sextantctl ${args.join(' ')} printed no JSON:\n${out.slice(0, 2000)}`);
    }
  }

  ctlRaw(...args) {
    const bin = path.join(this.binDir, 'sextantctl');
    return run(bin, ['--config', this.demo.SEXTANT_CONFIG, ...args], { env: this.env });
  }

  /** scripts/stack.sh ACTION NAME [flags] (stop/start/restart a single service). */
  async control(action, name, ...flags) {
    const r = await run(STACK_SH, [action, name, ...flags], { env: this.env, timeoutMs: 90_000 });
    if (r.code !== 0) throw new Error(describeRun(`scripts/stack.sh ${action} ${name} ${flags.join(' ')}`, r));
    return r;
  }

  /** redis-cli against the stack's Redis (redis_socket or host/port of sextant.conf). */
  async redis(...args) {
    const c = this.config();
    const where = c.redis_socket ? ['-s', c.redis_socket] : ['-h', c.redis_host || '127.0.0.1', '-p', c.redis_port || '6379'];
    const r = await run('redis-cli', [...where, ...args], { env: this.env });
    if (r.code !== 0) throw new Error(describeRun(`redis-cli ${args.join(' ')}`, r));
    return r.stdout.trim();
  }

  config() {
    return parseConfig(readFileSync(this.demo.SEXTANT_CONFIG, 'utf8'));
  }

  /** psql against the stack's database (pg_conninfo of sextant.conf); returns trimmed stdout. */
  async psql(sql) {
    const conninfo = this.config().pg_conninfo;
    if (!conninfo) throw new Error('sextant.conf has no pg_conninfo');
    const r = await run('psql', [conninfo, '-X', '-v', 'ON_ERROR_STOP=1', '-Atc', sql], { env: this.env });
    if (r.code !== 0) throw new Error(describeRun(`psql -c ${sql}`, r));
    return r.stdout.trim();
  }
}

/**
 * One stack for the calling test file: started in before(), stopped in
 * after(). Returns the Stack (fields filled once before() ran).
 * opts.extraConf: "name value" lines appended to sextant.conf (SEXTANT_EXTRA_CONF).
 */
export function useStack(label, opts = {}) {
  const stack = new Stack(label, opts);
  before(async () => {
    await stack.start();
  }, { timeout: STACK_UP_TIMEOUT_MS + 30_000 });
  after(async () => {
    await stack.stop();
  }, { timeout: 120_000 });
  const onSignal = (sig) => {
    if (stack.up) spawnSync(STACK_SH, ['down'], { env: stack.env, stdio: 'inherit', timeout: 60_000 });
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return stack;
}

/**
 * test() that prints the stack's log tails when it fails. Tests of a file run
 * one after another (they share the stack).
 */
export function stackTest(stack, name, opts, fn) {
  if (typeof opts === 'function') {
    fn = opts;
    opts = {};
  }
  return nodeTest(name, { timeout: 90_000, ...opts }, async (t) => {
    if (!stack.up) throw new Error('stack is not up (see the before hook\'s error)');
    if (stack.broken) throw new Error(`stack no longer running since an earlier test failed:\n${stack.broken}`);
    try {
      return await fn(t);
    } catch (e) {
      stack.failed = true;
      stack.dumpLogs(`test "${name}" failed`);
      // A stack with a service down would make every later test wait for its
      // deadlines: they fail at once instead, naming what is down.
      const st = await run(STACK_SH, ['status'], { env: stack.env, timeoutMs: 30_000 }).catch((x) => ({ code: -1, stdout: String(x) }));
      if (st.code !== 0) stack.broken = `after "${name}": scripts/stack.sh status:\n${st.stdout}${st.stderr ?? ''}`;
      throw e;
    }
  });
}

// -------------------------------------------------------------- assertions --

/** The {"error": {"code", "message"}} body of an API error. */
export function apiError(res) {
  const body = res.json();
  if (!body || typeof body.error !== 'object' || body.error === null) {
    throw new Error(`API error body lacks "error": ${res.text.slice(0, 300)}`);
  }
  if (typeof body.error.code !== 'string' && typeof body.error.code !== 'number') {
    throw new Error(`API error body lacks error.code: ${res.text.slice(0, 300)}`);
  }
  if (typeof body.error.message !== 'string') {
    throw new Error(`API error body lacks error.message: ${res.text.slice(0, 300)}`);
  }
  return body.error;
}

export function statSize(p) {
  return statSync(p).size;
}
