// browser.test.mjs: the dashboard (web/dist) in a real headless Chromium (Debian's
// `chromium`, driven by playwright-core) against a real stack: log in, a trace sent by the
// OpenTelemetry SDK appears in the trace search, its waterfall opens with its logs, an
// issue from an exception span is resolved, the logs explorer tails a log sent after the
// page opened (through the live stream, contract A), and a 10,000-span trace renders
// and scrolls with only the visible rows in the page. Each flow saves a screenshot under
// build-san/test-logs/screenshots/ (SEXTANT_SCREENSHOTS moves it).

import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { useStack, stackTest, run, eventually, REPO_ROOT } from './lib/stack.mjs';
import { encodeTraceRequest, randomTraceId, randomSpanId } from './lib/otlp.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.SEXTANT_CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.SEXTANT_SCREENSHOTS || path.join(REPO_ROOT, 'build-san', 'test-logs', 'screenshots');
const EMAIL = 'browser@example.com';
const PASSWORD = 'browser-password-1';

let context, page, profile;
const pageErrors = [];

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} missing: run make deps (Debian package chromium)`);
  if (!existsSync(path.join(REPO_ROOT, 'web', 'dist', 'index.html'))) throw new Error('web/dist missing: run make web');
  mkdirSync(SHOTS, { recursive: true });
  profile = mkdtempSync(path.join(os.tmpdir(), 'sx-chromium-'));
  // A fresh profile per run (playwright passes it as --user-data-dir).
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreHTTPSErrors: true,
    viewport: { width: 1400, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  page = context.pages()[0] || await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

// Registered before useStack's hooks, so the browser closes (and its live stream with it)
// before the stack stops.
after(async () => {
  if (context) await Promise.race([context.close(), new Promise((r) => setTimeout(r, 15_000))]);
  if (profile) rmSync(profile, { recursive: true, force: true });
});

const stack = useStack('browser');

/** eventually() for a predicate: retries until fn resolves truthy (eventually() stops at the
 * first answer that does not throw). */
const until = (fn, opts) => eventually(async () => {
  if (!(await fn())) throw new Error('not yet');
  return true;
}, opts);

const url = (p) => new URL(p, stack.url.origin).href;
const shot = (name) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
const projectPath = (rest = '') => `/p/${stack.project}${rest}`;

/** Runs one of the SDK emitters with the stack's CA trusted; returns its JSON report. */
async function emit(script, plan) {
  const r = await run(process.execPath, [path.join(HERE, script), JSON.stringify(plan)], {
    env: { ...process.env, NODE_EXTRA_CA_CERTS: stack.demo.SEXTANT_CA }, cwd: HERE,
  });
  assert.equal(r.code, 0, `${script} failed:\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

/** POST /v1/logs with OTLP JSON records ({body, severityNumber, severityText, traceId?, spanId?}). */
async function sendLogs(service, records) {
  const now = BigInt(Date.now()) * 1000000n;
  const body = {
    resourceLogs: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
      scopeLogs: [{
        scope: { name: 'browser-e2e' },
        logRecords: records.map((l, i) => ({
          timeUnixNano: String(now + BigInt(i)),
          severityNumber: l.severityNumber ?? 9,
          severityText: l.severityText ?? 'INFO',
          body: { stringValue: l.body },
          ...(l.traceId ? { traceId: l.traceId, spanId: l.spanId } : {}),
        })),
      }],
    }],
  };
  const r = await stack.request('POST', '/v1/logs', {
    headers: { 'Content-Type': 'application/json', 'X-API-Key': stack.ingestKey },
    body: JSON.stringify(body),
  });
  assert.equal(r.status, 200, `POST /v1/logs: ${r.status} ${r.text}`);
}

/** Status of GET .../stream (the live stream) without reading the stream itself. */
function streamStatus() {
  return new Promise((resolve) => {
    const req = https.get(url(`/api/v1/projects/${stack.project}/stream?topics=logs`), {
      agent: stack.agent, headers: { Authorization: `Bearer ${stack.token}`, Accept: 'text/event-stream' },
    }, (res) => {
      resolve(res.statusCode);
      req.destroy();
    });
    req.on('error', () => resolve(0));
    req.setTimeout(10_000, () => { req.destroy(); resolve(0); });
  });
}

stackTest(stack, 'log in: a wrong password is refused on the form; the right one opens the overview', async () => {
  const r = await run(path.join(stack.binDir, 'sextantctl'), ['--config', stack.demo.SEXTANT_CONFIG, 'user', 'create',
    EMAIL, '--name', 'Browser', '--password-stdin'], { env: stack.env, input: `${PASSWORD}\n` });
  assert.equal(r.code, 0, r.stderr);
  await stack.ctl('member', 'add', '--project', stack.project, EMAIL, 'owner');

  // A shared link to a page asks for the login, then opens that page.
  await page.goto(url(`${projectPath('/traces')}?range=6h`));
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password').fill('wrong-password-000');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: /invalid email or password/i }).waitFor();

  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Traces' }).waitFor();
  assert.equal(new URL(page.url()).search, '?range=6h', 'the time range of the link survives the login');
  assert.equal(await page.getByLabel('Time range').inputValue(), '6h');

  await page.goto(url('/'));
  await page.getByRole('heading', { name: 'All projects' }).waitFor();
  await page.getByRole('link', { name: stack.project, exact: true }).first().waitFor();
  await shot('01-login-overview');
});

let sdk;
stackTest(stack, 'a trace sent by the OpenTelemetry SDK appears in the trace search; filters live in the URL', async () => {
  await page.goto(url(projectPath('/traces')));
  await page.getByRole('heading', { name: 'Traces' }).waitFor();
  sdk = await emit('sdk-emitter.mjs', {
    endpoint: stack.demo.SEXTANT_OTLP_ENDPOINT, key: stack.ingestKey, protocol: 'proto',
    runTag: `browser-${Date.now()}`, baseMs: Date.now() - 1000, paging: 2,
  });
  const id = sdk.cross.traceId;
  // With the live stream the list refreshes itself; without it, Refresh does.
  const live = (await streamStatus()) === 200;
  await until(async () => {
    if (!live) await page.getByRole('button', { name: 'Refresh' }).click();
    return (await page.getByText(id).count()) > 0;
  }, { timeoutMs: 30_000, intervalMs: 1000, what: `trace ${id} in the trace list` });

  // Filters go into the address: status=error keeps the trace (it has an error span).
  await page.getByLabel('Status').selectOption('error');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.waitForURL(/status=error/);
  await page.reload();
  assert.equal(await page.getByLabel('Status').inputValue(), 'error');
  await page.getByText(id).waitFor();
  await shot('02-trace-search');

  // Dragging across the duration chart narrows the window: from/to in the URL, "custom".
  const box = await page.locator('.chart .u-over').first().boundingBox();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width + 20, box.y + box.height / 2, { steps: 5 }); // past the edge: up to 'to'
  await page.mouse.up();
  await page.waitForURL(/from=\d+&to=\d+/);
  assert.equal(await page.getByLabel('Time range').inputValue(), 'custom');
  const u = new URL(page.url());
  assert.ok(Number(u.searchParams.get('to')) > Number(u.searchParams.get('from')));
  await page.getByText(id).waitFor(); // the trace is recent: still inside the narrowed window
  await page.goBack();
  await page.waitForURL((x) => !x.search.includes('from='));
});

stackTest(stack, 'the waterfall shows the spans, errors, the critical path, a span panel and the trace logs', async () => {
  const id = sdk.cross.traceId;
  await sendLogs('backend', [{ body: `charging card for trace ${id}`, traceId: id, spanId: sdk.cross.chargeId, severityNumber: 17, severityText: 'ERROR' }]);
  await until(async () => {
    const r = await stack.api(`projects/${stack.project}/logs`, { query: { traceId: id, timeRange: '1h' } });
    return r.status === 200 && r.json().logs.length === 1;
  }, { timeoutMs: 30_000, what: 'the trace log stored' });

  await page.locator('a.trace-link', { hasText: 'GET /checkout' }).first().click();
  await page.waitForURL(new RegExp(`/traces/${id}`));
  const wf = page.locator('.wf-scroll');
  await wf.waitFor();
  const spans = (await stack.trace(id)).json().spans;
  assert.equal(await wf.getAttribute('data-rows'), String(spans.length));
  for (const s of spans) await page.locator(`.wf-row[data-span="${s.spanId}"]`).waitFor();
  // The failing span is marked as an error, and it is on the critical path with the root.
  const charge = page.locator(`.wf-row[data-span="${sdk.cross.chargeId}"]`);
  assert.match(await charge.getAttribute('class'), /\berr\b/);
  assert.equal(await charge.locator('.wf-bar.crit').count(), 1, 'charge card is on the critical path');
  assert.equal(await page.locator(`.wf-row[data-span="${sdk.cross.rootId}"] .wf-bar.crit`).count(), 1);
  assert.equal(await page.locator(`.wf-row[data-span="${sdk.cross.orphanId}"] .wf-bar.crit`).count(), 0,
    'a span outside the root tree is not on the critical path');
  // The trace's logs come from the logs API filtered by traceId.
  await page.locator('table.logs').getByText(`charging card for trace ${id}`).waitFor();

  // The span panel: attributes and the exception event; Escape closes it.
  await charge.locator('.wf-name').click();
  const panel = page.getByRole('dialog', { name: 'charge card' });
  await panel.waitFor();
  await panel.getByText('exception.type').waitFor();
  await panel.getByText(sdk.cross.errorMessage).first().waitFor();
  assert.match(page.url(), new RegExp(`span=${sdk.cross.chargeId}`), 'the open span is in the URL');
  await shot('03-trace-waterfall');
  await page.keyboard.press('Escape');
  await panel.waitFor({ state: 'detached' });
});

stackTest(stack, 'an issue from an exception span is resolved from its page', async () => {
  await emit('sdk-errors-emitter.mjs', {
    endpoint: stack.demo.SEXTANT_OTLP_ENDPOINT, key: stack.ingestKey, protocol: 'proto',
    release: '2.0.0', runTag: 'browser', count: 2,
  });
  let issue;
  await until(async () => {
    const r = await stack.api(`projects/${stack.project}/errors`, { query: { q: 'QuotaExceededError' } });
    issue = r.status === 200 ? r.json().issues[0] : null;
    return !!issue;
  }, { timeoutMs: 30_000, what: 'the QuotaExceededError issue' });

  await page.goto(url(projectPath('/issues')));
  await page.locator('a.issue-link', { hasText: issue.shortId }).click();
  await page.getByRole('heading', { name: new RegExp(issue.shortId) }).waitFor();
  assert.ok(await page.locator('.frames li.in-app').count() >= 1, 'the in-app frames are highlighted');
  assert.equal(await page.getByTestId('issue-status').textContent(), 'unresolved');
  await page.getByRole('button', { name: 'Resolve', exact: true }).click();
  await page.getByTestId('issue-status').filter({ hasText: /^resolved$/ }).waitFor();
  const r = await stack.api(`projects/${stack.project}/errors/${issue.shortId}`);
  assert.equal(r.json().status, 'resolved', 'the server stored the resolve');
  await shot('04-issue-resolved');
  // The list no longer shows it among the unresolved issues.
  await page.goto(url(projectPath('/issues')));
  await page.getByRole('heading', { name: 'Issues' }).waitFor();
  await page.waitForLoadState('networkidle');
  assert.equal(await page.locator('a.issue-link', { hasText: issue.shortId }).count(), 0);

  // Bulk triage from the list: the SDK trace's CardDeclinedError, selected and ignored.
  const card = (await stack.api(`projects/${stack.project}/errors`, { query: { q: 'CardDeclinedError' } })).json().issues[0];
  assert.ok(card, 'the CardDeclinedError issue exists');
  await page.getByLabel(`Select ${card.shortId}`).check();
  await page.getByRole('button', { name: 'Ignore selected' }).click();
  await page.locator('a.issue-link', { hasText: card.shortId }).waitFor({ state: 'detached' });
  assert.equal((await stack.api(`projects/${stack.project}/errors/${card.shortId}`)).json().status, 'ignored');
});

stackTest(stack, 'the logs explorer tails a log sent after the page opened, without a reload', async (t) => {
  await page.goto(url(`${projectPath('/logs')}?live=1`));
  await page.getByRole('heading', { name: 'Logs' }).waitFor();
  const status = await streamStatus();
  if (status === 404) {
    // No live stream on this server: the page says so instead of failing.
    await page.locator('[data-live="unavailable"]').waitFor({ timeout: 15_000 });
    await shot('05-logs-live-unavailable');
    t.skip('GET .../stream answers 404 on this build (the live stream is not merged yet)');
    return;
  }
  assert.equal(status, 200, `GET .../stream answered ${status}`);
  await page.locator('[data-live="live"]').waitFor({ timeout: 15_000 });
  await page.evaluate(() => { window.sxNoReload = true; });
  const body = `live tail line ${Date.now()}`;
  await sendLogs('tail-svc', [{ body, severityNumber: 13, severityText: 'WARN' }]);
  await page.locator('table.logs').getByText(body).waitFor({ timeout: 20_000 });
  assert.equal(await page.evaluate(() => window.sxNoReload), true, 'the page was not reloaded');
  await shot('05-logs-live-tail');

  // The stream drops (sextant-sse stopped): the header says so, then live again by itself,
  // and a line sent after that still arrives, without a reload.
  await stack.control('stop', 'sse');
  await page.locator('[data-live="reconnecting"], [data-live="offline"]').first().waitFor({ timeout: 20_000 });
  await shot('05b-logs-stream-dropped');
  await stack.control('start', 'sse');
  await page.locator('[data-live="live"]').waitFor({ timeout: 60_000 });
  const after = `after the drop ${Date.now()}`;
  await sendLogs('tail-svc', [{ body: after }]);
  await page.locator('table.logs').getByText(after).waitFor({ timeout: 20_000 });
  assert.equal(await page.evaluate(() => window.sxNoReload), true, 'the page was not reloaded');
});

const VOLUME_WORD = `volume${Date.now()}`;

stackTest(stack, 'the logs explorer shows the volume of matching lines by severity; dragging across or clicking a bar narrows the window', async () => {
  const word = VOLUME_WORD;
  await sendLogs('volume-svc', [
    { body: `${word} one`, severityNumber: 17, severityText: 'ERROR' },
    { body: `${word} two`, severityNumber: 13, severityText: 'WARN' },
    { body: `${word} three` },
  ]);
  await eventually(async () => {
    const r = await stack.api(`projects/${stack.project}/logs`, { query: { q: word, timeRange: '1h' } });
    assert.equal(r.json().logs.length, 3);
  }, { what: 'the three volume logs' });
  await page.goto(url(`${projectPath('/logs')}?range=1h&q=${word}`));
  const vol = page.getByLabel('Log volume');
  await vol.locator('.chart').waitFor();
  // The count is the server's histogram of the same filters: exactly the three lines.
  await vol.getByText(/^3 lines in this window/).waitFor();
  for (const k of ['error', 'warn', 'info']) await vol.locator('.u-legend').getByText(k, { exact: true }).waitFor();
  await page.locator('table.logs').getByText(`${word} two`).waitFor();
  await shot('05c-logs-volume');
  // Dragging across the chart sets a custom window in the URL (and keeps the search).
  const box = await vol.locator('.u-over').boundingBox();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.99, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  await page.waitForURL((u) => u.searchParams.get('from') && u.searchParams.get('to'));
  const u = new URL(page.url());
  assert.equal(u.searchParams.get('q'), word);
  assert.ok(Number(u.searchParams.get('to')) - Number(u.searchParams.get('from')) < 3600000, 'a narrower window');
  await vol.locator('.chart').waitFor();
  // Clicking a bar narrows the window to its step (1 min over the last hour).
  await page.goto(url(`${projectPath('/logs')}?range=1h&q=${word}`));
  await vol.getByText(/^3 lines in this window, per 1 min/).waitFor();
  const over = await vol.locator('.u-over').boundingBox();
  await page.mouse.click(over.x + over.width * 0.6, over.y + over.height / 2);
  await page.waitForURL((v) => v.searchParams.get('from') && v.searchParams.get('to'));
  const c = new URL(page.url());
  assert.equal(Number(c.searchParams.get('to')) - Number(c.searchParams.get('from')), 59999);
  assert.equal(Number(c.searchParams.get('from')) % 60000, 0, 'the step of the bar clicked');
  assert.equal(c.searchParams.get('q'), word);
});

stackTest(stack, 'a 10,000-span trace renders, keeps only visible rows in the page, and scrolls to its end', async () => {
  const traceId = randomTraceId();
  const N = 10_000;
  const base = BigInt(Date.now() - 60_000) * 1000000n;
  const ids = Array.from({ length: N }, () => randomSpanId());
  const spans = ids.map((spanId, i) => ({
    traceId, spanId, parentSpanId: i === 0 ? undefined : ids[Math.floor((i - 1) / 4)],
    name: i === 0 ? 'big root' : `op ${i}`, kind: i === 0 ? 2 : 1,
    start: base + BigInt(i) * 1000000n, end: base + BigInt(i) * 1000000n + (i === 0 ? BigInt(N + 10) * 1000000n : 500000n),
    attributes: { i }, status: i % 997 === 0 && i ? { code: 2, message: 'boom' } : undefined,
  }));
  const r = await stack.ingest(encodeTraceRequest([{ resource: { 'service.name': 'big-svc' }, spans }]));
  assert.equal(r.status, 200, `ingest: ${r.status} ${r.text.slice(0, 300)}`);
  let apiMs = 0;
  await until(async () => {
    const a = Date.now();
    const t = await stack.trace(traceId);
    apiMs = Date.now() - a;
    return t.status === 200 && t.json().spans.length === N;
  }, { timeoutMs: 60_000, intervalMs: 1000, what: '10,000 spans stored' });

  const t0 = Date.now();
  await page.goto(url(projectPath(`/traces/${traceId}`)));
  const wf = page.locator(`.wf-scroll[data-rows="${N}"]`);
  await wf.waitFor({ timeout: 30_000 }).catch(async (e) => { await shot('06-trace-10000-spans-failed'); throw e; });
  await page.locator('.wf-row[data-idx="0"]').waitFor();
  const renderMs = Date.now() - t0;
  const inDom = await page.locator('.wf-row').count();
  assert.ok(inDom > 10 && inDom < 200, `only the visible rows are in the page (${inDom})`);

  // Scroll to the end: the last rows appear, the first ones leave the page.
  const t1 = Date.now();
  await wf.evaluate((el) => { el.scrollTop = el.scrollHeight; });
  await page.locator(`.wf-row[data-idx="${N - 1}"]`).waitFor();
  const scrollMs = Date.now() - t1;
  assert.equal(await page.locator('.wf-row[data-idx="0"]').count(), 0);
  assert.ok(await page.locator('.wf-row').count() < 200);

  // Keyboard: left folds the root's subtree (one row left), right unfolds it; up and down
  // move between rows (the list scrolls with the focus).
  await wf.evaluate((el) => { el.scrollTop = 0; });
  await page.locator('.wf-row[data-idx="0"] .wf-name').focus();
  await page.keyboard.press('ArrowLeft');
  await page.locator('.wf-scroll[data-rows="1"]').waitFor();
  assert.equal(await page.locator('.wf-row[data-idx="0"]').getAttribute('aria-expanded'), 'false');
  await page.keyboard.press('ArrowRight');
  await page.locator(`.wf-scroll[data-rows="${N}"]`).waitFor();
  for (let i = 0; i < 40; i++) await page.keyboard.press('ArrowDown');
  assert.equal(await page.evaluate(() => document.activeElement.closest('.wf-row').dataset.idx), '40');
  await page.keyboard.press('Enter');
  await page.getByRole('dialog').waitFor();
  await shot('06-trace-10000-spans');
  await page.keyboard.press('Escape');

  // Find: one span among 10,000 by name; Enter jumps to it (scrolled into the page).
  await page.getByLabel('Find span').fill('op 9999');
  await page.getByRole('status').filter({ hasText: '0 of 1' }).waitFor();
  await page.getByLabel('Find span').press('Enter');
  await page.locator('.wf-row.hit').filter({ hasText: 'op 9999' }).waitFor();
  await page.getByRole('status').filter({ hasText: '1 of 1' }).waitFor();
  await page.getByLabel('Find span').fill('op 99');
  await page.getByRole('status').filter({ hasText: /of 111$/ }).waitFor(); // op 99, op 990-999, op 9900-9999
  process.stderr.write(`[browser] 10,000-span trace: API ${apiMs} ms; first rows after ${renderMs} ms (page load + API), scroll to the end ${scrollMs} ms\n`);
});

stackTest(stack, 'settings: the sampling rate and a retention changed on the form are stored', async () => {
  await page.goto(url(projectPath('/settings')));
  const sampling = page.getByLabel('Sampling rate (0..1)');
  await sampling.waitFor();
  await sampling.fill('0.5');
  await page.getByLabel('Retention: logs (days)').fill('9');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
  const p = (await stack.api(`projects/${stack.project}`)).json();
  assert.equal(p.samplingRate, 0.5);
  assert.equal(p.retentionDays.logs, 9);
  // A value the server refuses comes back as its message, and nothing changes.
  await sampling.fill('7');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByRole('alert').filter({ hasText: /Could not save the settings/ }).waitFor();
  assert.equal((await stack.api(`projects/${stack.project}`)).json().samplingRate, 0.5);
  await shot('07-settings');
  await sampling.fill('1');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
});

stackTest(stack, 'settings: attribute rules are added, edited, removed and saved; a refused rule shows the server\'s reason', async () => {
  await page.goto(url(projectPath('/settings')));
  const form = page.getByRole('form', { name: 'Attribute rules' });
  await form.getByRole('heading', { name: 'Attribute rules' }).waitFor();
  const add = () => form.getByRole('button', { name: 'Add rule' }).click();
  await add();
  await form.getByLabel('Rule 1 key').fill('http.request.header.cookie');
  await add();
  await form.getByLabel('Rule 2 action').selectOption('truncate');
  await form.getByLabel('Rule 2 key').fill('db.statement');
  await form.getByLabel('Rule 2 max length').fill('100');
  await add();
  await form.getByLabel('Rule 3 action').selectOption('redact');
  await form.getByLabel('Rule 3 pattern').fill('ssn=[0-9]+');
  await form.getByLabel('Rule 3 ignore case').check();
  await form.getByRole('button', { name: 'Save attribute rules' }).click();
  await form.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
  const rules = async () => (await stack.api(`projects/${stack.project}`)).json().attributeRules;
  assert.deepEqual(await rules(), [
    { action: 'drop', key: 'http.request.header.cookie' },
    { action: 'truncate', key: 'db.statement', maxLength: 100 },
    { action: 'redact', pattern: 'ssn=[0-9]+', ignoreCase: true },
  ]);
  // Removed and reordered, then saved.
  await form.getByRole('button', { name: 'Remove rule 1' }).click();
  await form.getByRole('button', { name: 'Move rule 2 up' }).click();
  await form.getByRole('button', { name: 'Save attribute rules' }).click();
  await form.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
  assert.deepEqual(await rules(), [
    { action: 'redact', pattern: 'ssn=[0-9]+', ignoreCase: true },
    { action: 'truncate', key: 'db.statement', maxLength: 100 },
  ]);
  // A rule the server refuses (truncate without a length): its reason next to the form, nothing stored.
  await add();
  await form.getByLabel('Rule 3 action').selectOption('truncate');
  await form.getByLabel('Rule 3 key').fill('x');
  await form.getByRole('button', { name: 'Save attribute rules' }).click();
  await form.getByRole('alert').filter({ hasText: /Could not save the attribute rules: .*\S/ }).waitFor();
  assert.equal((await rules()).length, 2);
  await shot('07b-attribute-rules');
  // After a reload the editor lists what is stored.
  await page.reload();
  await form.getByLabel('Rule 2 key').waitFor();
  assert.equal(await form.getByLabel('Rule 2 key').inputValue(), 'db.statement');
  assert.equal(await form.getByLabel('Rule 1 pattern').inputValue(), 'ssn=[0-9]+');
  assert.equal(await form.getByLabel('Rule 3 key').count(), 0);
});

/** Creates a dashboard on the page and opens the editor of a new panel with this title; returns the dialog. */
async function newDashboardPanel(name, title) {
  await page.goto(url(projectPath('/dashboards')));
  await page.getByLabel('Name').fill(name);
  await page.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('button', { name: 'Add panel' }).click();
  const dlg = page.getByRole('dialog', { name: 'Edit panel' });
  await dlg.getByLabel('Title').fill(title);
  return dlg;
}

stackTest(stack, 'custom dashboard: created, a panel added on the grid, saved, shown after a reload', async (t) => {
  const probe = await stack.api(`projects/${stack.project}/dashboards`);
  if (probe.status === 404) {
    await page.goto(url(projectPath('/dashboards')));
    await page.getByText(/not available on this server/).waitFor();
    t.skip('GET .../dashboards answers 404 on this build (the dashboards API is not merged yet)');
    return;
  }
  assert.equal(probe.status, 200, probe.text);
  const dlg = await newDashboardPanel('Checkout board', 'Checkout requests');
  await dlg.getByLabel('Source').selectOption('red');
  await dlg.getByLabel('Service').fill('frontend');
  await dlg.getByLabel('width').fill('8');
  await dlg.getByRole('button', { name: 'Done' }).click();
  // Arranged with the panel's buttons: one column right, then as wide as it can be (x + w <= 12).
  await page.getByRole('button', { name: 'Move right: Checkout requests' }).click();
  for (let i = 0; i < 5; i++) await page.getByRole('button', { name: 'Wider: Checkout requests' }).click();
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('button', { name: 'Edit', exact: true }).waitFor();
  const id = new URL(page.url()).pathname.split('/').pop();
  const d = (await stack.api(`projects/${stack.project}/dashboards/${id}`)).json().dashboard;
  assert.equal(d.name, 'Checkout board');
  assert.equal(d.panels.length, 1);
  assert.equal(d.panels[0].title, 'Checkout requests');
  assert.equal(d.panels[0].query.source, 'red');
  assert.equal(d.panels[0].query.service, 'frontend');
  assert.equal(d.panels[0].query.field, 'requests');
  assert.equal(d.panels[0].type, 'timeseries');
  assert.equal(d.panels[0].layout.x, 1);
  assert.equal(d.panels[0].layout.w, 11);
  await page.reload();
  await page.getByRole('heading', { name: 'Checkout requests' }).waitFor();
  // The panel ran its query: a chart, or the empty-range note (never an error).
  await page.locator('.dash-panel').locator('.chart, .chart-empty').first().waitFor();
  assert.equal(await page.locator('.dash-panel .error').count(), 0);
  await shot('08-dashboard');
});

stackTest(stack, 'a log count panel counts every matching line (the server\'s histogram)', async (t) => {
  if ((await stack.api(`projects/${stack.project}/dashboards`)).status === 404) {
    t.skip('GET .../dashboards answers 404 on this build');
    return;
  }
  const dlg = await newDashboardPanel('Log board', 'Volume lines');
  await dlg.getByLabel('Type').selectOption('stat');
  await dlg.getByLabel('Source').selectOption('logs');
  await dlg.getByLabel('Search').fill(VOLUME_WORD);
  await dlg.getByRole('button', { name: 'Done' }).click();
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('button', { name: 'Edit', exact: true }).waitFor();
  // The three lines the volume test sent, counted by the server for the panel's window.
  const panel = page.locator('.dash-panel').filter({ hasText: 'Volume lines' });
  await panel.locator('.stat-value').filter({ hasText: /^3$/ }).waitFor();
  assert.equal(await panel.getByText('at least').count(), 0);
});

stackTest(stack, 'no page threw an uncaught error', async () => {
  assert.deepEqual(pageErrors, []);
});
