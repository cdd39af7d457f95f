// Measurements (not a pass/fail test; run by hand: npm run perf): the jobs
// page's time to ready with 10,000 jobs in the database, how smooth the
// live log view stays while a step prints 1,000 lines a second, and the
// page of a running job of 10,000 steps (a for_each loop).
import { chromium } from "playwright-core";
import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createServer } from "node:net";
import { cpus, loadavg } from "node:os";

// The machine's load with each figure: a shared machine's numbers mean
// little without it.
const load = () => `load average ${loadavg().map((x) => x.toFixed(1)).join(" / ")} on ${cpus().length} CPUs`;

const here = dirname(fileURLToPath(import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "stroem-ui-perf-"));
const JOBS = Number(process.env.PERF_JOBS || 10_000);
const ws = join(tmp, "ws");
mkdirSync(join(ws, ".workflows"), { recursive: true });
// Phase 1: one worker (4 slots) runs 4 `parked` jobs, which sleep, so the
// other 9,996 stay pending in the database (a docker step would be refused
// at once, no worker offering docker). Phase 2, on a fresh database, runs
// `flood`, which prints 1,000 lines a second for 10 s.
writeFileSync(
  join(ws, ".workflows", "perf.yaml"),
  `actions:
  park: { type: shell, cmd: "sleep 100000" }
  flood:
    type: shell
    cmd: |
      for s in 1 2 3 4 5 6 7 8 9 10; do
        awk -v s="$s" 'BEGIN { for (i = 1; i <= 1000; i++) printf "second %d line %d \\033[36mcyan\\033[0m padding padding padding\\n", s, i }'
        sleep 1
      done
  items:
    type: shell
    cmd: |
      printf 'OUTPUT: {"items":['; i=1; while [ $i -lt 10000 ]; do printf '%d,' $i; i=$((i+1)); done; echo '10000]}'
  one: { type: shell, cmd: "true" }
tasks:
  parked: { flow: { a: { action: park } } }
  flood: { flow: { out: { action: flood } } }
  big:
    flow:
      items: { action: items }
      fan: { action: one, depends_on: [items], for_each: "{{ items.output.items }}" }
`,
);

const bin = process.env.STROEM_BIN || join(tmp, "stroem");
if (!process.env.STROEM_BIN) execFileSync("go", ["build", "-o", bin, "./cmd/stroem"], { cwd: join(here, "..", ".."), stdio: "inherit" });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let server;
let base;
async function startServer(data, workers) {
  const port = await new Promise((res) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });
  base = `http://127.0.0.1:${port}`;
  server = spawn(bin, ["dev", ws, "--listen", `127.0.0.1:${port}`, "--data-dir", join(tmp, data), "--workers", String(workers)], { stdio: "ignore" });
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(base + "/readyz")).ok) return;
    } catch {}
    await sleep(100);
  }
  throw new Error("stroem dev did not become ready");
}
async function stopServer() {
  if (!server || server.exitCode !== null) return;
  server.kill("SIGTERM");
  await new Promise((r) => server.once("exit", r));
}
await startServer("data-jobs", 1);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
let browser;
try {
  let t0 = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < JOBS) {
        next++;
        const r = await fetch(`${base}/api/workspaces/default/tasks/parked/execute`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
        if (r.status !== 201) throw new Error(`execute: ${r.status} ${await r.text()}`);
      }
    }),
  );
  const total = (await (await fetch(`${base}/api/jobs?limit=1`)).json()).total;
  console.log(`created ${JOBS} jobs in ${Date.now() - t0} ms; /api/jobs total = ${total} (${load()})`);

  const api = [];
  for (let i = 0; i < 10; i++) {
    t0 = performance.now();
    await (await fetch(`${base}/api/jobs?limit=50&offset=${i * 50}`)).json();
    api.push(performance.now() - t0);
  }
  console.log(`GET /api/jobs?limit=50 (with total): median ${median(api).toFixed(1)} ms, max ${Math.max(...api).toFixed(1)} ms`);

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  // The renderer's main-thread task time (CDP Performance.TaskDuration,
  // wall time of the page's tasks: on a loaded machine it includes time the
  // OS gave other processes in the middle of a task).
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Performance.enable");
  const busy = async () => Object.fromEntries((await cdp.send("Performance.getMetrics")).metrics.map((m) => [m.name, m.value])).TaskDuration * 1000;
  const busyMs = [];
  const ready = [];
  for (let i = 0; i < 5; i++) {
    t0 = Date.now();
    await page.goto(`${base}/jobs`);
    await page.getByText(`${total} jobs`).waitFor();
    await page.locator("tbody tr").nth(49).waitFor();
    ready.push(Date.now() - t0);
    // The counters restart with each document: the value is the new page's.
    busyMs.push(Math.round(await busy()));
  }
  console.log(`/jobs page ready (navigation → 50 rows and the total shown), ${total} jobs: ${ready.join(", ")} ms; median ${median(ready)} ms; the page's main-thread tasks ${busyMs.join(", ")} ms (median ${median(busyMs)} ms) (${load()})`);
  // Where the last load's time went: when each request ended, from the
  // navigation's start.
  const wf = await page.evaluate(() => {
    const nav = performance.getEntriesByType("navigation")[0];
    const rs = performance.getEntriesByType("resource").map((e) => `${e.name.replace(location.origin, "").replace(/-[\w-]{8}\.js$/, ".js").slice(0, 40)} ${Math.round(e.startTime)}→${Math.round(e.responseEnd)}`);
    return [`document ${Math.round(nav.responseEnd)}`, `DOMContentLoaded ${Math.round(nav.domContentLoadedEventEnd)}`, ...rs, `now ${Math.round(performance.now())}`].join("; ");
  });
  console.log(`last load, ms from navigation start: ${wf}`);
  t0 = Date.now();
  await page.getByRole("button", { name: "Next page" }).click();
  await page.getByText(/page 2 of/).waitFor();
  await page.locator("tbody tr").nth(49).waitFor();
  console.log(`next page: ${Date.now() - t0} ms`);

  await stopServer();
  await startServer("data-flood", 1);
  const { job_id } = await (await fetch(`${base}/api/workspaces/default/tasks/flood/execute`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" })).json();
  if (!job_id) throw new Error("flood did not start");
  await page.goto(`${base}/jobs/${job_id}`);
  await page.locator("[role=log]").waitFor();
  await page.evaluate(() => {
    window.__gaps = [];
    window.__long = [];
    let last = performance.now();
    const loop = (t) => {
      window.__gaps.push(t - last);
      last = t;
      if (!window.__stop) requestAnimationFrame(loop);
    };
    requestAnimationFrame(loop);
    new PerformanceObserver((l) => l.getEntries().forEach((e) => window.__long.push(e.duration))).observe({ type: "longtask", buffered: false });
  });
  t0 = Date.now();
  const fb0 = await busy();
  await page.getByText(/stream ended/).waitFor({ timeout: 60_000 });
  const floodBusy = (await busy()) - fb0;
  const r = await page.evaluate(() => {
    window.__stop = true;
    const g = window.__gaps.slice(1).sort((a, b) => a - b);
    return {
      frames: g.length,
      p50: g[Math.floor(g.length * 0.5)],
      p95: g[Math.floor(g.length * 0.95)],
      p99: g[Math.floor(g.length * 0.99)],
      max: g[g.length - 1],
      long: window.__long.length,
      longMax: Math.max(0, ...window.__long),
      dom: document.querySelectorAll("[role=log] [data-seq]").length,
      state: document.querySelector("[data-testid=log-state]").textContent,
    };
  });
  console.log(
    `live log at 1,000 lines/s for 10 s (${Date.now() - t0} ms): ${r.state}; frame gap p50 ${r.p50.toFixed(1)} / p95 ${r.p95.toFixed(1)} / p99 ${r.p99.toFixed(1)} / max ${r.max.toFixed(1)} ms over ${r.frames} frames; long tasks ${r.long} (longest ${r.longMax.toFixed(0)} ms); rows in the DOM ${r.dom}; main thread busy ${Math.round(floodBusy)} ms of ${Date.now() - t0} ms (${load()})`,
  );

  // Phase 3: the page of a running job of 10,000 steps, opened once its loop
  // has expanded; then 10 s of it live (the page reloads the job meanwhile).
  await stopServer();
  await startServer("data-big", 1);
  const big = (await (await fetch(`${base}/api/workspaces/default/tasks/big/execute`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" })).json()).job_id;
  if (!big) throw new Error("big did not start");
  for (let i = 0; ; i++) {
    const j = await (await fetch(`${base}/api/jobs/${big}`)).json();
    if (j.steps.length > 10_000) break;
    if (i > 600) throw new Error("the loop did not expand");
    await sleep(100);
  }
  t0 = Date.now();
  await page.goto(`${base}/jobs/${big}`);
  await page.getByRole("list", { name: "Instances of fan" }).waitFor({ timeout: 60_000 });
  const bigReady = Date.now() - t0;
  const bigLoadBusy = Math.round(await busy());
  await page.evaluate(() => {
    window.__long = [];
    new PerformanceObserver((l) => l.getEntries().forEach((e) => window.__long.push(e.duration))).observe({ type: "longtask", buffered: false });
  });
  const bb0 = await busy();
  await sleep(10_000);
  const bigBusy = (await busy()) - bb0;
  const lt = await page.evaluate(() => ({ n: window.__long.length, max: Math.max(0, ...window.__long) }));
  t0 = Date.now();
  await page.getByRole("tab", { name: "Timeline" }).click();
  await page.getByRole("button", { name: /Show all \d+ steps/ }).waitFor();
  console.log(
    `running job of 10,001 steps: page ready in ${bigReady} ms (main thread ${bigLoadBusy} ms); then 10 s live: main thread busy ${Math.round(bigBusy)} ms, long tasks ${lt.n} (longest ${lt.max.toFixed(0)} ms); timeline tab drawn in ${Date.now() - t0} ms (${load()})`,
  );
} finally {
  await browser?.close();
  await stopServer();
  rmSync(tmp, { recursive: true, force: true });
}
