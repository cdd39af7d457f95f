// Browser end-to-end tests: a real `stroem dev` (the built binary, UI
// embedded) driven through Debian's Chromium with playwright-core (no
// browser download). Screenshots of the main pages go to e2e-output/
// (not committed). Run: npm run e2e  (STROEM_BIN=path to skip `go build`).
import { chromium } from "playwright-core";
import { AxeBuilder } from "@axe-core/playwright";
import { spawn, execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
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
// A copy of the workspace: the approval test adds a file to it.
const wsDir = join(tmp, "workspace");
cpSync(join(here, "workspace"), wsDir, { recursive: true });
const server = spawn(bin, ["dev", wsDir, "--listen", `127.0.0.1:${port}`, "--data-dir", join(tmp, "data"), "--workers", "2"], {
  stdio: ["ignore", "pipe", "pipe"],
});
server.stdout.on("data", (d) => (serverLog += d));
server.stderr.on("data", (d) => (serverLog += d));

const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
let browser;
let authServer;
let authDB;
const consoleErrors = [];
const results = [];
let failed = false;

class Skip extends Error {}
async function test(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    if (e instanceof Skip) {
      results.push(`skip ${name}: ${e.message}`);
      return;
    }
    failed = true;
    results.push(`FAIL ${name}: ${e.stack || e}`);
  }
}

// Readable contrast: axe-core's color-contrast rule (WCAG AA, 4.5:1 for
// text) on the page as it is, collected and asserted at the end.
const contrastProblems = [];
const contrastChecked = [];
async function contrast(p, name) {
  // Colours in transition (a theme switch fades every button's colours) are
  // neither theme's: axe once measured a button half way (2.71:1).
  await settled(p);
  const r = await new AxeBuilder({ page: p }).withRules(["color-contrast"]).analyze();
  contrastChecked.push(name);
  for (const v of r.violations) for (const n of v.nodes) contrastProblems.push(`${name}: ${n.target.join(" ")}: ${n.any[0]?.message ?? v.help}`);
}

// What scrolls sideways: the page itself, or a table wider than its box (a
// list's table scrolls inside its card, which the page's own width does not
// show: the jobs list did so at phone width with the page still 390 px).
// Empty when everything fits.
async function sideways(p) {
  return p.evaluate(() => {
    const out = [];
    const d = document.documentElement;
    if (d.scrollWidth > d.clientWidth) out.push(`the page: ${d.scrollWidth} px > ${d.clientWidth} px`);
    for (const t of document.querySelectorAll("table")) {
      const box = t.parentElement;
      if (t.offsetWidth > box.clientWidth) {
        const head = [...t.querySelectorAll("th")].filter((h) => h.offsetWidth > 0).map((h) => h.textContent).join("|");
        out.push(`table ${head}: ${t.offsetWidth} px > ${box.clientWidth} px`);
      }
    }
    return out;
  });
}

// Waits until no CSS transition or finite animation runs in the page (the
// navigation drawer slides), so a screenshot shows the settled layout.
async function settled(p) {
  // Endless ones (a running status's pulse) never end: only finite ones count.
  await p.waitForFunction(
    () => document.getAnimations().every((a) => a.playState !== "running" || a.effect?.getTiming().iterations === Infinity),
    null,
    { timeout: 10_000 },
  );
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
    await contrast(page, "tasks");
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
    // Text a number box cannot read ("1e") is a problem, not an empty box
    // (the count was left out and the default used).
    await page.getByLabel("count").fill("");
    await page.getByLabel("count").pressSequentially("1e");
    await page.getByRole("button", { name: "Run" }).click();
    await page.getByText("Enter a whole number.").waitFor();
    assert.match(page.url(), /\/tasks\/default\/greet$/);
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
    await contrast(page, "job (light)");
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
    // The status is polled (1 s), the log streamed: the status may lag.
    await waitFor(async () => (await jobStatus()) === "running", "the job to show running");
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

  let failedJobUrl;
  await test("read a failed step's error", async () => {
    await page.goto(base + "/tasks/default/broken");
    await page.getByRole("button", { name: "Run" }).click();
    await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
    failedJobUrl = page.url();
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

  await test("keyboard: the job's graph has ringed steps that Enter selects, and no unringed tab stops", async () => {
    if (!failedJobUrl) throw new Error("no failed job (the test before failed)");
    await page.goto(failedJobUrl);
    await page.locator(".react-flow__node [data-status=failed]").waitFor();
    await page.getByRole("link", { name: "Re-run" }).focus();
    const stops = [];
    for (let i = 0; i < 20; i++) {
      await page.keyboard.press("Tab");
      const f = await page.evaluate(() => {
        const e = document.activeElement;
        return {
          what: e.closest(".react-flow__edge") ? "edge" : e.classList.contains("react-flow__node") ? `node ${e.getAttribute("data-id")}` : e.textContent.trim().slice(0, 30),
          ring: getComputedStyle(e).outlineStyle !== "none",
          row: !!e.closest("[data-step-row]"),
        };
      });
      if (f.row) break; // the step list: past the graph
      stops.push(f);
    }
    assert.deepEqual(stops.filter((f) => !f.ring), [], "every tab stop is ringed");
    assert.deepEqual(stops.filter((f) => f.what === "edge"), [], "no edge is a tab stop");
    assert.ok(stops.some((f) => f.what === "node prepare"), `steps are tab stops: ${stops.map((f) => f.what).join(", ")}`);
    await page.locator(".react-flow__node[data-id=prepare]").focus();
    await page.keyboard.press("Enter");
    await page.locator("[data-step-row=prepare] button[aria-pressed=true]").waitFor();
  });

  await test("jobs list filters and pages", async () => {
    await page.goto(base + "/jobs");
    await page.getByRole("heading", { name: "Jobs" }).waitFor();
    await page.getByText("3 jobs").waitFor();
    await shot("jobs");
    await contrast(page, "jobs (light)");
    await page.getByLabel("Status").selectOption("failed");
    await page.getByText("1 job", { exact: true }).waitFor();
    await page.getByLabel("Status").selectOption("");
    await page.getByLabel("Task").fill("greet");
    await page.getByText("1 job", { exact: true }).waitFor();
  });

  await test("approve a gate (runs once the server has the approval route)", async () => {
    // Capability check: the server answers an unknown route with
    // "no route for POST …"; with the route, an unknown job is a 404 of
    // its own (or 400/409): anything else means the route exists.
    const probe = await fetch(`${base}/api/jobs/00000000-0000-0000-0000-000000000000/steps/gate/approve`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ approved: true }),
    });
    const pb = await probe.json().catch(() => ({}));
    if ((probe.status === 404 && /^no route for /.test(pb.error ?? "")) || probe.status === 405) {
      throw new Skip(`this server has no POST /api/jobs/{id}/steps/{step}/approve (answered ${probe.status} ${JSON.stringify(pb.error)}); approval gates not merged yet`);
    }
    writeFileSync(
      join(wsDir, ".workflows", "approval.yaml"),
      `actions:
  gate-approval:
    type: approval
    message: "Ship {{ input.version }}?"
  ship-it:
    type: shell
    cmd: echo "shipped"
tasks:
  gated:
    input:
      version: { type: string, default: "1.2.3" }
    flow:
      approve:
        action: gate-approval
        input:
          version: "{{ input.version }}"
      ship:
        action: ship-it
        depends_on: [approve]
`,
    );
    const rl = await fetch(`${base}/api/workspaces/default/reload`, { method: "POST" });
    assert.equal(rl.status, 200, await rl.text());
    const ws = await (await fetch(`${base}/api/workspaces/default`)).json();
    assert.deepEqual(ws.errors ?? [], [], "the approval workflow loads");

    // Approve: the job waits, shows the message, then runs on.
    await page.goto(base + "/tasks/default/gated");
    await page.getByRole("button", { name: "Run" }).click();
    await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
    const card = page.getByRole("region", { name: "Approval: approve" });
    await card.waitFor();
    assert.match(await card.getByTestId("approval-message").innerText(), /Ship/);
    await page.locator(".react-flow__node [data-status=suspended]").waitFor();
    await shot("job-approval");
    await card.getByRole("button", { name: "Approve" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Approve step" }).click();
    await waitFor(async () => (await jobStatus()) === "completed", "the approved job to complete");
    await page.locator("[data-step-row=ship] [data-status=completed]").waitFor();

    // Reject with a reason: the step fails and the job stops.
    await page.goto(base + "/tasks/default/gated");
    await page.getByRole("button", { name: "Run" }).click();
    await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
    const rejected = page.url().split("/").pop();
    await card.getByRole("button", { name: "Reject" }).click();
    await page.getByLabel(/Reason/).fill("wrong version");
    await page.getByRole("dialog").getByRole("button", { name: "Reject step" }).click();
    await waitFor(async () => (await jobStatus()) === "failed", "the rejected job to fail");
    const j = await (await fetch(`${base}/api/jobs/${rejected}`)).json();
    const gate = j.steps.find((x) => x.step_name === "approve");
    assert.equal(gate.status, "failed");
    assert.match(JSON.stringify(gate), /wrong version/, "the rejection reason is kept");
  });

  await test("a for_each loop's instances under their loop step (runs once the server knows for_each)", async () => {
    const file = join(wsDir, ".workflows", "loop.yaml");
    writeFileSync(
      file,
      `actions:
  each-region:
    type: shell
    input:
      region: { type: string }
    cmd: echo "deploying $INPUT_REGION"
tasks:
  fanout:
    flow:
      deploy:
        action: each-region
        for_each: ["eu", "us", "ap"]
        input:
          region: "{{ each.item }}"
      after:
        action: each-region
        depends_on: [deploy]
        input:
          region: "all"
`,
    );
    const reload = async () => {
      const r = await fetch(`${base}/api/workspaces/default/reload`, { method: "POST" });
      assert.equal(r.status, 200, await r.clone().text());
      return (await r.json()).errors ?? [];
    };
    const errs = await reload();
    if (errs.some((e) => /for_each/.test(e))) {
      rmSync(file);
      await reload();
      throw new Skip(`this server does not know for_each (${errs.find((e) => /for_each/.test(e))}); loops not merged yet`);
    }
    assert.deepEqual(errs, [], "the loop workflow loads");
    await page.goto(base + "/tasks/default/fanout");
    await page.getByRole("button", { name: "Run" }).click();
    await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
    await waitFor(async () => (await jobStatus()) === "completed", "the loop job to complete");
    const inst = page.getByRole("list", { name: "Instances of deploy" });
    await inst.locator("[data-step-row='deploy[2]'] [data-status=completed]").waitFor();
    assert.equal(await inst.locator(":scope > li[data-step-row]").count(), 3);
    await inst.locator("[data-step-row='deploy[1]']").getByText('item "us"').waitFor();
    await page.locator(".react-flow__node [data-loop-instances='3']").waitFor();
    assert.equal(await page.locator(".react-flow__node").count(), 2, "one node for the loop, one for after");
    await page.locator("[role=log]").getByText("deploying ap").waitFor();
    await shot("job-loop");
  });

  // Until loops and approval gates are merged the real server cannot
  // produce such a job: the browser gets canned answers (the shapes of the
  // upstream reference) for one made-up job, to see and check the page.
  await test("preview with canned API answers: a for_each loop, a sub-job and a waiting approval", async () => {
    const id = "0000cafe-0000-4000-8000-000000000001";
    const t = (s) => new Date(Date.now() - s * 1000).toISOString();
    const step = (name, status, extra = {}) => ({ step_name: name, action_name: "deploy-region", action_type: "shell", status, started_at: t(30), completed_at: status === "running" || status === "pending" ? null : t(10), ...extra });
    const job = {
      job_id: id, workspace: "default", task_name: "release", status: "running", source_type: "user", created_at: t(40), started_at: t(40), input: { version: "1.2.3" },
      steps: [
        step("fetch", "completed", { action_name: "list-regions" }),
        step("deploy", "running", { depends_on: ["fetch"] }),
        ...["us-east-1", "eu-west-1", "ap-south-1", "sa-east-1", "eu-north-1"].map((r, i) => step(`deploy[${i}]`, ["completed", "completed", "running", "failed", "pending"][i], { loop_item: r, depends_on: ["fetch"], ...(i === 3 ? { error_message: "exit code 1: region unavailable" } : {}) })),
        step("smoke", "completed", { action_name: "smoke-tests", action_type: "task", child_job_id: "0000cafe-0000-4000-8000-000000000002", depends_on: ["fetch"] }),
        step("approve", "suspended", { action_name: "prod-approval", action_type: "approval", approval_message: "Deploy 1.2.3 to production?\nCurrent: 1.2.2 · by ada@example.com", completed_at: null, depends_on: ["deploy", "smoke"] }),
        step("promote", "pending", { action_name: "promote", depends_on: ["approve"], started_at: null, completed_at: null }),
      ],
    };
    const ctxs = [page, null];
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: "dark", isMobile: true });
    ctxs[1] = await phone.newPage();
    for (const p of ctxs) {
      p.on("console", (m) => m.type() === "error" && consoleErrors.push(`${p.url()}: ${m.text()}`));
      await p.route(`**/api/jobs/${id}`, (r) => r.fulfill({ json: job }));
      await p.route(`**/api/jobs/${id}/logs/stream*`, (r) =>
        r.fulfill({ status: 200, contentType: "text/event-stream", body: `id: 1\ndata: ${JSON.stringify({ seq: 1, step: "deploy[0]", attempt: 1, ts: t(20), stream: "stdout", text: "deployed to us-east-1" })}\n\nevent: done\ndata: {"status":"running"}\n\n` }),
      );
      await p.goto(`${base}/jobs/${id}`);
      await p.getByRole("region", { name: "Approval: approve" }).waitFor();
      await p.locator(".react-flow__node [data-loop-instances='5']").waitFor();
      assert.equal(await p.getByRole("list", { name: "Instances of deploy" }).locator("[data-step-row]").count(), 5);
      await p.getByText(/for_each: 2 of 5 completed · 1 running · 1 failed · 1 pending/).waitFor();
      assert.equal(await p.getByTestId("child-job").getAttribute("href"), "/jobs/0000cafe-0000-4000-8000-000000000002");
      await settled(p);
    }
    await shot("job-loop-approval-preview");
    await contrast(page, "loop and approval preview (light)");
    await contrast(ctxs[1], "loop and approval preview (phone, dark)");
    await shot("job-loop-approval-preview-phone-dark", ctxs[1]);
    assert.deepEqual(await sideways(ctxs[1]), [], "nothing scrolls sideways on the job page at phone width");
    await phone.close();
    // Leave the page before its canned answers go: the job page polls the job
    // every second, and a poll after the unroute is a real 404 (a console error).
    await page.goto("about:blank");
    await page.unroute(`**/api/jobs/${id}`);
    await page.unroute(`**/api/jobs/${id}/logs/stream*`);
  });

  await test("workers, triggers, dashboard", async () => {
    await page.goto(base + "/workers");
    await page.getByText("dev-worker-1").waitFor();
    await shot("workers");
    await page.goto(base + "/triggers");
    await page.getByRole("cell", { name: "0 0 3 * * *" }).waitFor();
    await shot("triggers");
    await page.goto(base + "/");
    await page.getByText("Recent failures").waitFor();
    await page.getByRole("link", { name: "broken" }).first().waitFor();
    await shot("dashboard");
    await contrast(page, "dashboard (light)");
  });

  await test("dark mode and phone width", async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: "dark", isMobile: true });
    phone.setDefaultTimeout(60_000);
    const p = await phone.newPage();
    p.on("console", (m) => m.type() === "error" && consoleErrors.push(`${p.url()}: ${m.text()}`));
    p.on("pageerror", (e) => consoleErrors.push(`${p.url()}: ${e.message}`));
    await p.goto(`${base}/jobs/${greetJob}`);
    await p.getByText(/stream ended/).waitFor();
    // The graph is a chunk of its own, loaded after the page: the checks
    // below are of the page with it drawn, not of its spinner.
    await p.locator(".react-flow__node").first().waitFor();
    await settled(p);
    assert.ok(await p.evaluate(() => document.documentElement.classList.contains("dark")), "dark theme from the system preference");
    await shot("job-phone-dark", p);
    await contrast(p, "job (phone, dark)");
    assert.deepEqual(await sideways(p), [], "nothing scrolls sideways on a job at phone width");
    await p.getByRole("button", { name: "Open menu" }).click();
    await p.getByRole("link", { name: "Jobs" }).click();
    await p.getByRole("heading", { name: "Jobs" }).waitFor();
    await settled(p);
    // The drawer closed when the page changed: off screen and hidden.
    const nav = p.getByRole("complementary", { name: "Main navigation", includeHidden: true });
    const box = await nav.boundingBox();
    assert.ok(!box || box.x + box.width <= 0, `navigation drawer closed (box ${JSON.stringify(box)})`);
    assert.equal(await nav.evaluate((el) => getComputedStyle(el).visibility), "hidden", "a closed drawer is hidden (not in the tab order)");
    await p.getByText(/\d+ jobs?/).first().waitFor();
    await p.getByRole("link", { name: "greet" }).first().waitFor();
    await shot("jobs-phone-dark", p);
    await contrast(p, "jobs (phone, dark)");
    assert.deepEqual(await sideways(p), [], "nothing scrolls sideways on the jobs list at phone width");
    assert.ok(await p.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth), "no horizontal page overflow");
    await p.goto(`${base}/workers`);
    await p.getByText("dev-worker-1").waitFor();
    await settled(p);
    await shot("workers-phone-dark", p);
    assert.deepEqual(await sideways(p), [], "nothing scrolls sideways on the workers page at phone width");
    await p.goto(`${base}/triggers`);
    await p.getByText("nightly-greet").waitFor();
    await settled(p);
    await shot("triggers-phone-dark", p);
    assert.deepEqual(await sideways(p), [], "nothing scrolls sideways on the triggers page at phone width");
    await p.goto(`${base}/`);
    await p.getByText("Recent failures").waitFor();
    await p.getByRole("link", { name: "broken" }).first().waitFor();
    await settled(p);
    await contrast(p, "dashboard (phone, dark)");
    await shot("dashboard-phone-dark", p);
    assert.deepEqual(await sideways(p), [], "nothing scrolls sideways on the dashboard at phone width");
    await p.goto(`${base}/tasks/default/greet`);
    await p.locator(".react-flow__node").first().waitFor();
    await settled(p);
    await shot("task-phone-dark", p);
    await contrast(p, "task (phone, dark)");
    await p.getByText("whole task").waitFor(); // the duration statistics' table
    assert.deepEqual(await sideways(p), [], "nothing scrolls sideways on a task at phone width");
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

  await test("a page whose code does not arrive (the server went away) shows an error and Reload, not a blank app", async () => {
    const c = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    c.setDefaultTimeout(60_000);
    const p = await c.newPage();
    const thrown = [];
    p.on("pageerror", (e) => thrown.push(e.message));
    await p.goto(base + "/jobs");
    await p.getByRole("heading", { name: "Jobs" }).waitFor();
    // The workers page's code has not been fetched yet; it fails as it
    // does while the server is down.
    await p.route("**/assets/Workers-*.js", (r) => r.abort("connectionrefused"));
    await p.getByRole("navigation").getByRole("link", { name: "Workers" }).click();
    await p.getByRole("alert").filter({ hasText: "This page could not be loaded" }).waitFor();
    await p.getByRole("navigation").getByRole("link", { name: "Jobs" }).waitFor(); // the app is still there
    await shot("page-code-missing", p);
    await p.unroute("**/assets/Workers-*.js");
    await p.getByRole("button", { name: "Reload" }).click();
    await p.getByRole("heading", { name: "Workers" }).waitFor();
    await p.getByText("dev-worker-1").waitFor();
    assert.deepEqual(thrown, [], "nothing thrown past the page");
    await c.close();
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

  // Sign-in and administration need a server with an auth: section, which
  // needs PostgreSQL (STROEM_E2E_PG, default the local trust setup; the
  // database is created here and dropped at the end).
  await test("sign in; my API keys; users, groups and admin flag; sign out", async () => {
    const pg = process.env.STROEM_E2E_PG || "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable";
    try {
      execFileSync("psql", [pg, "-qAtc", "select 1"], { stdio: "pipe" });
    } catch (e) {
      throw new Skip(`no PostgreSQL for the auth server (psql ${pg} failed: ${String(e.stderr || e.message).trim().split("\n")[0]})`);
    }
    authDB = `stroem_ui_e2e_${process.pid}_${Date.now()}`;
    execFileSync("psql", [pg, "-qc", `CREATE DATABASE ${authDB}`], { stdio: "pipe" });
    const dbURL = pg.replace(/\/[^/?]*(\?|$)/, `/${authDB}$1`);
    const aport = await freePort();
    const abase = `http://127.0.0.1:${aport}`;
    const cfg = join(tmp, "auth-server.yaml");
    writeFileSync(
      cfg,
      `listen: "127.0.0.1:${aport}"
db: { url: "${dbURL}" }
workspaces:
  default: { type: folder, path: "${join(here, "workspace")}" }
worker_token: "e2e-worker-token-0123456789abcdef"
auth:
  jwt_secret: "e2e-jwt-secret-0123456789abcdef01"
  refresh_secret: "e2e-refresh-secret-0123456789abcd"
  providers:
    internal: { provider_type: internal }
  initial_user: { email: admin@example.com, password: "admin-pass-1234" }
`,
    );
    authServer = spawn(bin, ["server", "--config", cfg], { stdio: ["ignore", "pipe", "pipe"] });
    authServer.stdout.on("data", (d) => (serverLog += d));
    authServer.stderr.on("data", (d) => (serverLog += d));
    await waitFor(async () => (await fetch(`${abase}/readyz`)).ok, "the auth server to be ready");
    // A second user, as a single sign-on provider would have created it.
    execFileSync("psql", [dbURL, "-qc", "INSERT INTO users (id, email, name, is_admin, created_at) VALUES (gen_random_uuid(), 'dev@example.com', 'Dev', false, now())"], { stdio: "pipe" });

    const actx = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: "light" });
    actx.setDefaultTimeout(60_000);
    const a = await actx.newPage();
    let expected401 = false;
    a.on("console", (m) => m.type() === "error" && !(expected401 && /401/.test(m.text())) && consoleErrors.push(`${a.url()}: ${m.text()}`));
    a.on("pageerror", (e) => consoleErrors.push(`${a.url()}: ${e.message}`));

    await a.goto(abase + "/jobs");
    await a.waitForURL(/\/login\?next=%2Fjobs$/);
    await a.getByLabel("Email").fill("admin@example.com");
    await a.getByLabel("Password").fill("wrong-password");
    expected401 = true;
    await a.getByRole("button", { name: "Sign in" }).click();
    await a.getByRole("alert").getByText(/Wrong email or password/).waitFor();
    expected401 = false;
    await shot("login", a);
    await contrast(a, "login (light)");
    await a.getByLabel("Password").fill("admin-pass-1234");
    await a.getByRole("button", { name: "Sign in" }).click();
    await a.waitForURL(abase + "/jobs");
    await a.getByRole("heading", { name: "Jobs" }).waitFor();
    await a.getByText("admin@example.com").waitFor();

    // My API keys: create (shown once, works), revoke (stops working).
    await a.getByRole("navigation").getByRole("link", { name: "API keys" }).click();
    await a.getByLabel("Name").fill("ci");
    await a.getByLabel("Expires in (days)").fill("30");
    await a.getByRole("button", { name: "Create key" }).click();
    const key = (await a.getByTestId("new-key").innerText()).trim();
    assert.match(key, /^strm_[0-9a-f]{32}$/);
    const me = await fetch(`${abase}/api/auth/me`, { headers: { Authorization: `Bearer ${key}` } });
    assert.equal(me.status, 200);
    assert.equal((await me.json()).email, "admin@example.com");
    await a.locator("tr[data-key]").getByText("ci", { exact: true }).waitFor();
    await shot("api-keys", a);
    await contrast(a, "API keys (light)");
    await a.setViewportSize({ width: 390, height: 844 });
    await shot("api-keys-phone", a);
    assert.deepEqual(await sideways(a), [], "nothing scrolls sideways on the API keys page at phone width");
    await a.setViewportSize({ width: 1280, height: 800 });
    await a.getByRole("button", { name: /^Revoke ci/ }).click();
    await a.getByRole("dialog").getByRole("button", { name: "Revoke key" }).click();
    await a.getByText("No API keys.").waitFor();
    assert.equal((await fetch(`${abase}/api/auth/me`, { headers: { Authorization: `Bearer ${key}` } })).status, 401);

    // Users: both listed; give dev a group and the admin flag.
    await a.getByRole("navigation").getByRole("link", { name: "Users", exact: true }).click();
    await a.getByRole("link", { name: "dev@example.com" }).waitFor();
    await shot("users", a);
    await contrast(a, "users (light)");
    await a.setViewportSize({ width: 390, height: 844 });
    await shot("users-phone", a);
    assert.deepEqual(await sideways(a), [], "nothing scrolls sideways on the users page at phone width");
    await a.setViewportSize({ width: 1280, height: 800 });
    await a.getByRole("link", { name: "dev@example.com" }).click();
    await a.getByRole("heading", { name: "dev@example.com" }).waitFor();
    await a.getByLabel("Add a group").fill("devops");
    await a.getByRole("button", { name: "Add", exact: true }).click();
    await a.getByRole("button", { name: "Save groups" }).click();
    await a.getByText("Saved.").waitFor();
    await a.getByRole("switch", { name: "Admin" }).click();
    await waitFor(async () => (await a.getByRole("switch", { name: "Admin" }).getAttribute("aria-checked")) === "true", "the admin flag to be set");
    await a.reload();
    await a.getByRole("heading", { name: "dev@example.com" }).waitFor();
    assert.equal(await a.getByRole("switch", { name: "Admin" }).getAttribute("aria-checked"), "true");
    await a.getByRole("list", { name: "Groups" }).getByText("devops").waitFor();
    await shot("user", a);
    await contrast(a, "user (light)");
    await a.getByRole("button", { name: "Use dark theme" }).click();
    await a.getByRole("button", { name: "Use light theme" }).waitFor();
    await contrast(a, "user (dark)");
    await shot("user-dark", a);
    await a.getByRole("button", { name: "Use light theme" }).click();
    // Your own admin flag cannot be switched off.
    await a.getByRole("navigation").getByRole("link", { name: "Users", exact: true }).click();
    await a.getByRole("link", { name: "admin@example.com" }).click();
    await a.getByRole("heading", { name: "admin@example.com" }).waitFor();
    assert.ok(await a.getByRole("switch", { name: "Admin" }).isDisabled());

    await a.getByRole("navigation").getByRole("link", { name: "Groups" }).click();
    const g = a.locator("[data-group=devops]");
    await g.getByRole("link", { name: "dev@example.com" }).waitFor();
    await shot("groups", a);
    await contrast(a, "groups (light)");

    // Sign out: back to the login page, and a reload stays signed out.
    await a.getByRole("button", { name: "Sign out" }).click();
    await a.waitForURL(/\/login/);
    await a.goto(abase + "/admin/users");
    await a.waitForURL(/\/login\?next=/);
    await actx.close();
  });

  await test("readable contrast (axe-core color-contrast, WCAG AA) on the main pages, light and dark", async () => {
    assert.ok(contrastChecked.length >= 8, `pages checked: ${contrastChecked.join(", ")}`);
    results.push(`     contrast checked on ${contrastChecked.length} page states: ${contrastChecked.join(", ")}`);
    assert.deepEqual(contrastProblems, []);
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
  if (authServer && authServer.exitCode === null) {
    authServer.kill("SIGTERM");
    await new Promise((r) => authServer.once("exit", r));
  }
  if (authDB) {
    try {
      execFileSync("psql", [process.env.STROEM_E2E_PG || "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "-qc", `DROP DATABASE IF EXISTS ${authDB} WITH (FORCE)`], { stdio: "pipe" });
    } catch (e) {
      results.push(`warn could not drop database ${authDB}: ${e.message}`);
    }
  }
  console.log(results.join("\n"));
  if (failed) console.log("--- stroem dev log (tail) ---\n" + serverLog.split("\n").slice(-40).join("\n"));
  rmSync(tmp, { recursive: true, force: true });
  console.log(failed ? "FAIL" : "PASS", `screenshots in ${out}`);
  process.exit(failed ? 1 : 0);
}
