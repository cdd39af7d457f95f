// Browser end-to-end tests: a real `stroem dev` (the built binary, UI
// embedded) driven through Debian's Chromium with playwright-core (no
// browser download). Screenshots of the main pages go to e2e-output/
// (not committed). Run: npm run e2e  (STROEM_BIN=path to skip `go build`).
import { chromium } from "playwright-core";
import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createServer } from "node:net";
import assert from "node:assert/strict";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..", "..");
const out = join(here, "..", "e2e-output");
mkdirSync(out, { recursive: true });
const tmp = mkdtempSync(join(tmpdir(), "stroem-ui-e2e-"));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

async function waitFor(fn, what, timeout = 60_000) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      if (await fn()) return;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? ": " + last.message : ""}`);
}

const bin = process.env.STROEM_BIN || join(tmp, "stroem");
if (!process.env.STROEM_BIN) {
  console.log("== go build ./cmd/stroem");
  execFileSync("go", ["build", "-o", bin, "./cmd/stroem"], { cwd: repo, stdio: "inherit" });
}
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
let serverLog = "";
const server = spawn(bin, ["dev", join(here, "workspace"), "--listen", `127.0.0.1:${port}`, "--data-dir", join(tmp, "data"), "--workers", "2"], {
  stdio: ["ignore", "pipe", "pipe"],
});
server.stdout.on("data", (d) => (serverLog += d));
server.stderr.on("data", (d) => (serverLog += d));

const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
let browser;
const consoleErrors = [];
const results = [];
let failed = false;

async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed = true;
    results.push(`FAIL ${name}: ${e.stack || e}`);
  }
}

try {
  await waitFor(async () => (await fetch(`${base}/readyz`)).ok, "stroem dev to be ready");
  browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 }, colorScheme: "light", acceptDownloads: true });
  // Generous timeouts: CI machines can be slow; nothing here measures time.
  ctx.setDefaultTimeout(60_000);
  const page = await ctx.newPage();
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(`${page.url()}: ${m.text()}`));
  page.on("pageerror", (e) => consoleErrors.push(`${page.url()}: ${e.message}`));
  const shot = (name, p = page) => p.screenshot({ path: join(out, `${name}.png`), fullPage: true });
  const jobStatus = () => page.locator("h1 [data-status]").getAttribute("data-status");

  await test("dashboard loads with at most 250 KB of gzipped JavaScript", async () => {
    const t0 = Date.now();
    await page.goto(base + "/");
    await page.getByRole("heading", { name: "Dashboard" }).waitFor();
    await page.getByText("Workers online").waitFor();
    await waitFor(async () => /\d+ \/ \d+/.test(await page.locator("a[href='/workers']").last().innerText()), "worker count");
    const js = await page.evaluate(() =>
      performance
        .getEntriesByType("resource")
        .filter((e) => e.name.endsWith(".js"))
        .map((e) => ({ name: e.name.split("/").pop(), bytes: e.encodedBodySize })),
    );
    const kb = js.reduce((n, e) => n + e.bytes, 0) / 1024;
    results.push(`     dashboard with workers shown in ${Date.now() - t0} ms; JavaScript loaded: ${kb.toFixed(1)} KB over the wire (${js.length} files)`);
    assert.ok(kb > 0 && kb <= 250, `initial JavaScript ${kb.toFixed(1)} KB`);
  });

  await test("tasks page lists and searches tasks", async () => {
    await page.getByRole("link", { name: "Tasks" }).click();
    await page.getByRole("link", { name: /^greet triggers Say hello/ }).waitFor(); // has_triggers
    assert.equal(await page.getByRole("link", { name: /^slow/ }).innerText().then((t) => t.includes("triggers")), false);
    await shot("tasks");
    await page.getByRole("searchbox", { name: "Search tasks" }).fill("fail");
    await page.getByRole("link", { name: /^broken/ }).waitFor();
    assert.equal(await page.getByRole("link", { name: /^greet/ }).count(), 0, "greet is filtered out");
  });

  let greetJob;
  await test("run a task from its form; its logs arrive; re-run prefills", async () => {
    await page.goto(base + "/tasks/default/greet");
    await page.getByRole("heading", { name: "greet" }).waitFor();
    await page.locator(".react-flow__node").first().waitFor();
    await page.getByText("nightly-greet").waitFor();
    await shot("task");
    await page.getByRole("button", { name: "Run" }).click();
    await page.getByText("Required.").waitFor(); // name is required
    await page.getByLabel("name").fill("Ada");
    await page.getByLabel("count").fill("3");
    await page.getByRole("switch").click();
    await page.getByLabel("color").selectOption("green");
    await page.getByRole("button", { name: "Run" }).click();
    await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
    greetJob = page.url().split("/").pop();
    await waitFor(async () => (await jobStatus()) === "completed", "greet to complete");
    await page.locator("[role=log]").getByText("Hello Ada (green, 3/3)").waitFor();
    await page.locator("[role=log] [data-stream=stderr]").getByText("LOUD MODE").waitFor();
    await page.getByText(/stream ended \(completed\)/).waitFor();
    await shot("job-completed");
    const job = await (await fetch(`${base}/api/jobs/${greetJob}`)).json();
    assert.deepEqual(job.input, { name: "Ada", count: 3, loud: true, color: "green" });
    await page.getByRole("link", { name: "Re-run" }).click();
    await page.getByRole("heading", { name: "Run again" }).waitFor();
    assert.equal(await page.getByLabel("name").inputValue(), "Ada");
    assert.equal(await page.getByLabel("count").inputValue(), "3");
    assert.equal(await page.getByLabel("color").inputValue(), "green");
    assert.equal(await page.getByRole("switch").getAttribute("aria-checked"), "true");
  });

  await test("watch a job's logs arrive live, then cancel it", async () => {
    await page.goto(base + "/tasks/default/slow");
    await page.getByRole("button", { name: "Run" }).click();
    await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
    const log = page.locator("[role=log]");
    await log.getByText("tick 5", { exact: true }).waitFor();
    assert.equal(await jobStatus(), "running");
    const seen = await page.getByTestId("log-state").innerText();
    const n1 = parseInt(seen, 10);
    await waitFor(async () => parseInt(await page.getByTestId("log-state").innerText(), 10) >= n1 + 10, "more lines to arrive live");
    await shot("job-running");
    await page.getByRole("button", { name: "Cancel job" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Cancel job" }).click();
    await waitFor(async () => (await jobStatus()) === "cancelled", "the job to be cancelled");
    await page.getByText(/stream ended \(cancelled\)/).waitFor();
    await page.locator("[data-step-row=ticker] [data-status=cancelled]").waitFor();
  });

  await test("read a failed step's error", async () => {
    await page.goto(base + "/tasks/default/broken");
    await page.getByRole("button", { name: "Run" }).click();
    await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
    await waitFor(async () => (await jobStatus()) === "failed", "the job to fail");
    const err = page.locator("[data-step-row=explode] [data-testid=step-error]");
    await err.waitFor();
    assert.match(await err.innerText(), /disk full/);
    await page.locator("[data-step-row=never] [data-status=skipped]").waitFor();
    await page.locator(".react-flow__node [data-status=failed]").waitFor();
    await page.locator("[data-step-row=explode] button").click();
    await page.getByRole("table").filter({ hasText: "Attempts" }).getByText("4").first().waitFor();
    await page.getByRole("tab", { name: "Timeline" }).click();
    await shot("job-failed");
    await page.getByRole("tab", { name: "Logs" }).click();
    await page.getByLabel("Step", { exact: true }).selectOption("explode");
    await page.locator("[role=log]").getByText("fatal: disk full on /var/data").waitFor();
    await page.getByRole("searchbox", { name: "Search the log" }).fill("full");
    await page.getByText("1 of 2 lines").waitFor();
    const dl = page.waitForEvent("download");
    await page.getByRole("button", { name: "Download" }).click();
    const file = await dl;
    assert.match(file.suggestedFilename(), /^job-[0-9a-f]{8}-explode\.log$/);
  });

  await test("jobs list filters and pages", async () => {
    await page.goto(base + "/jobs");
    await page.getByRole("heading", { name: "Jobs" }).waitFor();
    await page.getByText("3 jobs").waitFor();
    await shot("jobs");
    await page.getByLabel("Status").selectOption("failed");
    await page.getByText("1 job", { exact: true }).waitFor();
    await page.getByLabel("Status").selectOption("");
    await page.getByLabel("Task").fill("greet");
    await page.getByText("1 job", { exact: true }).waitFor();
  });

  await test("workers, triggers, dashboard", async () => {
    await page.goto(base + "/workers");
    await page.getByText("dev-worker-1").waitFor();
    await shot("workers");
    await page.goto(base + "/triggers");
    await page.getByText("0 0 3 * * *").waitFor();
    await shot("triggers");
    await page.goto(base + "/");
    await page.getByText("Recent failures").waitFor();
    await page.getByRole("link", { name: "broken" }).first().waitFor();
    await shot("dashboard");
  });

  await test("dark mode and phone width", async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: "dark", isMobile: true });
    phone.setDefaultTimeout(60_000);
    const p = await phone.newPage();
    p.on("console", (m) => m.type() === "error" && consoleErrors.push(`${p.url()}: ${m.text()}`));
    p.on("pageerror", (e) => consoleErrors.push(`${p.url()}: ${e.message}`));
    await p.goto(`${base}/jobs/${greetJob}`);
    await p.getByText(/stream ended/).waitFor();
    assert.ok(await p.evaluate(() => document.documentElement.classList.contains("dark")), "dark theme from the system preference");
    await shot("job-phone-dark", p);
    await p.getByRole("button", { name: "Open menu" }).click();
    await p.getByRole("link", { name: "Jobs" }).click();
    await p.getByRole("heading", { name: "Jobs" }).waitFor();
    await shot("jobs-phone-dark", p);
    const sw = await p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1);
    assert.ok(sw, "no horizontal page scroll at phone width");
    await phone.close();
  });

  await test("keyboard: skip link and tab to the navigation", async () => {
    await page.goto(base + "/jobs");
    await page.getByRole("heading", { name: "Jobs" }).waitFor();
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Skip to content");
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Strøm");
  });

  await test("unknown API routes stay JSON 404s; SPA routes serve the app", async () => {
    const api = await fetch(`${base}/api/nope`);
    assert.equal(api.status, 404);
    assert.match(api.headers.get("content-type"), /json/);
    const spa = await fetch(`${base}/jobs/whatever`);
    assert.equal(spa.status, 200);
    assert.match(await spa.text(), /<div id="root">/);
    assert.equal((await fetch(`${base}/assets/missing.js`)).status, 404);
  });

  await test("no console errors", async () => {
    assert.deepEqual(consoleErrors, []);
  });
} catch (e) {
  failed = true;
  results.push(`FAIL setup: ${e.stack || e}`);
} finally {
  await browser?.close();
  server.kill("SIGTERM");
  await new Promise((r) => server.once("exit", r));
  console.log(results.join("\n"));
  if (failed) console.log("--- stroem dev log (tail) ---\n" + serverLog.split("\n").slice(-40).join("\n"));
  rmSync(tmp, { recursive: true, force: true });
  console.log(failed ? "FAIL" : "PASS", `screenshots in ${out}`);
  process.exit(failed ? 1 : 0);
}
