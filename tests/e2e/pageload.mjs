// pageload.mjs: first-page load time of the dashboard, for `make bench` (scripts/bench.sh):
// headless Chromium (playwright-core) logs in once, then opens the project overview in a
// fresh browser context per sample (empty HTTP cache, the session cookie kept) and times
// navigation start -> the overview's figures on screen. Lives beside the e2e tests to use
// their playwright-core.
//
//   node tests/e2e/pageload.mjs '{"url","email","password","project","samples"}'
//
// Playwright gives the browser a fresh temporary profile. Prints one JSON line: {samples, p50_ms, p90_ms, max_ms, dcl_p50_ms, bytes}; exits 1 when
// the page never showed its figures.

import { chromium } from 'playwright-core';

const plan = JSON.parse(process.argv[2] ?? '{}');
for (const k of ['url', 'email', 'password', 'project']) {
  if (!plan[k]) {
    console.error(`pageload: plan lacks ${k}`);
    process.exit(2);
  }
}
const samples = Math.max(1, Math.min(50, plan.samples ?? 10));
const browser = await chromium.launch({
  executablePath: process.env.SEXTANT_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
try {
  const login = await browser.newContext({ ignoreHTTPSErrors: true });
  const res = await login.request.post(new URL('/api/v1/auth/login', plan.url).href, {
    data: { email: plan.email, password: plan.password },
  });
  if (res.status() !== 200) throw new Error(`login: ${res.status()} ${await res.text()}`);
  const state = await login.storageState();
  await login.close();

  const target = new URL(`/p/${encodeURIComponent(plan.project)}?range=1h`, plan.url).href;
  const times = [], dcl = [];
  let bytes = 0;
  for (let i = 0; i < samples; i++) {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true, storageState: state, viewport: { width: 1400, height: 900 } });
    const page = await ctx.newPage();
    let b = 0;
    page.on('response', (r) => { r.body().then((x) => { b += x.length; }, () => {}); });
    const t0 = Date.now();
    await page.goto(target);
    // The overview's figures (from .../overview, or the issue stats without it).
    await page.locator('.stats .stat').first().waitFor({ timeout: 30_000 });
    times.push(Date.now() - t0);
    dcl.push(await page.evaluate(() => {
      const n = performance.getEntriesByType('navigation')[0];
      return n ? Math.round(n.domContentLoadedEventEnd) : 0;
    }));
    bytes = b;
    await ctx.close();
  }
  console.log(JSON.stringify({
    samples, p50_ms: pct(times, 50), p90_ms: pct(times, 90), max_ms: Math.max(...times),
    dcl_p50_ms: pct(dcl, 50), bytes,
  }));
} catch (e) {
  console.error(`pageload: ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
