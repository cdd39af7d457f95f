import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter, Route, Routes } from "react-router";
import { afterEach, describe, expect, it, vi } from "vitest";
import { mockApi } from "@/test/fetchmock";
import type { Job, Step } from "@/lib/types";

// The log view and the graph have their own tests; here they stay simple.
vi.mock("@/components/LogViewer", () => ({
  LogViewer: ({ jobId, initialStep }: { jobId: string; initialStep?: string }) => <div data-testid="log">{`log of ${jobId} ${initialStep ?? ""}`}</div>,
}));
vi.mock("@/components/Dag", () => ({
  default: ({ steps }: { steps: { name: string; instances?: unknown[] }[] }) => (
    <ul aria-label="graph">
      {steps.map((s) => (
        <li key={s.name}>{`${s.name}${s.instances ? ` x${s.instances.length}` : ""}`}</li>
      ))}
    </ul>
  ),
}));

const { default: JobPage, jobPollMs } = await import("./JobPage");

const ID = "11111111-2222-3333-4444-555555555555";
const CHILD = "99999999-2222-3333-4444-555555555555";
const st = (name: string, status: Step["status"], extra: Partial<Step> = {}): Step => ({ step_name: name, action_name: "act", action_type: "shell", status, ...extra });

function job(steps: Step[], extra: Partial<Job> = {}): Job {
  return { job_id: ID, workspace: "default", task_name: "deploy", status: "running", source_type: "api", created_at: "2026-12-06T10:00:00Z", steps, ...extra };
}

function renderJob() {
  return render(
    <MemoryRouter initialEntries={[`/jobs/${ID}`]}>
      <Routes>
        <Route path="/jobs/:id" element={<JobPage />} />
      </Routes>
    </MemoryRouter>,
  );
}

afterEach(() => vi.unstubAllGlobals());

describe("JobPage: a skipped job", () => {
  it("says why it did not run, offers no cancel, and stops polling", async () => {
    const calls = mockApi({
      [`GET /api/jobs/${ID}`]: () => job([], { status: "skipped", source_type: "trigger", source_id: "default/nightly", completed_at: "2026-12-06T10:00:00Z" }),
    });
    renderJob();
    expect(await screen.findByText(/not run: the trigger's previous job was unfinished/)).toBeInTheDocument();
    expect(screen.getAllByText("skipped").length).toBeGreaterThan(0);
    expect(screen.getByText(/trigger: default\/nightly/)).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: /Cancel/ })).toBeNull();
    await new Promise((r) => setTimeout(r, 1200));
    expect(calls.filter((c) => c.path === `/api/jobs/${ID}`).length).toBe(1);
  });
});

describe("JobPage: approvals, loops and sub-jobs", () => {
  it("shows a waiting approval with its message and approves it through the reference's route", async () => {
    let decided = false;
    const calls = mockApi({
      [`GET /api/jobs/${ID}`]: () =>
        job([st("build", "completed"), decided ? st("approve", "completed", { action_type: "approval", approved_by: "ada@example.com" }) : st("approve", "suspended", { action_type: "approval", approval_message: "Deploy 1.2.3 to production?" })]),
      [`POST /api/jobs/${ID}/steps/approve/approve`]: () => {
        decided = true;
        return { status: "ok" };
      },
    });
    const user = userEvent.setup();
    renderJob();
    const card = await screen.findByRole("region", { name: "Approval: approve" });
    expect(within(card).getByTestId("approval-message")).toHaveTextContent("Deploy 1.2.3 to production?");
    expect(screen.getAllByText("waiting for approval").length).toBeGreaterThan(0);
    await user.click(within(card).getByRole("button", { name: "Approve" }));
    await user.click(await screen.findByRole("button", { name: "Approve step" }));
    await waitFor(() => expect(screen.queryByRole("region", { name: "Approval: approve" })).toBeNull());
    expect(calls.filter((c) => c.method === "POST")).toEqual([{ method: "POST", path: `/api/jobs/${ID}/steps/approve/approve`, body: { approved: true } }]);
    expect(await screen.findByTestId("approval-decision")).toHaveTextContent("Approved by ada@example.com");
  });

  it("rejects with a reason, and shows the server's refusal", async () => {
    let answer: [number, unknown] = [403, { error: "you may not run deploy" }];
    const calls = mockApi({
      [`GET /api/jobs/${ID}`]: () => job([st("gate", "suspended", { action_type: "approval", message: "Go?" })]),
      [`POST /api/jobs/${ID}/steps/gate/approve`]: () => answer,
    });
    const user = userEvent.setup();
    renderJob();
    await user.click(await screen.findByRole("button", { name: "Reject" }));
    await user.type(screen.getByLabelText(/Reason/), "wrong version");
    await user.click(screen.getByRole("button", { name: "Reject step" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("you may not run deploy");
    answer = [200, { status: "ok" }];
    await user.click(screen.getByRole("button", { name: "Reject step" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    const posts = calls.filter((c) => c.method === "POST");
    expect(posts).toHaveLength(2);
    expect(posts[1].body).toEqual({ approved: false, rejection_reason: "wrong version" });
  });

  it("groups loop instances under their loop step in the step list and the graph, and links sub-jobs and the parent", async () => {
    mockApi({
      [`GET /api/jobs/${ID}`]: () =>
        job(
          [
            st("fetch", "completed"),
            st("process", "running", { depends_on: ["fetch"] }),
            st("process[1]", "running", { loop_item: "eu-west-1" }),
            st("process[0]", "completed", { loop_item: "us-east-1" }),
            st("process[2]", "failed", { loop_item: "ap-south-1", error_message: "boom" }),
            st("sub", "running", { action_type: "task", child_job_id: CHILD }),
          ],
          {
            parent_job_id: "77777777-2222-3333-4444-555555555555",
            parent_step_name: "fan",
            source_type: "task",
            source_id: "77777777-2222-3333-4444-555555555555/fan",
          },
        ),
    });
    const user = userEvent.setup();
    renderJob();
    const inst = await screen.findByRole("list", { name: "Instances of process" });
    const rows = within(inst).getAllByRole("listitem");
    expect(rows.map((r) => r.getAttribute("data-step-row"))).toEqual(["process[0]", "process[1]", "process[2]"]);
    expect(within(rows[0]).getByText('item "us-east-1"')).toBeInTheDocument();
    expect(within(rows[2]).getByTestId("step-error")).toHaveTextContent("boom");
    expect(screen.getByText(/for_each: 1 of 3 completed · 1 running · 1 failed/)).toBeInTheDocument();
    // Top-level rows: the instances are not repeated there.
    const top = document.querySelectorAll("[data-step-row]:not([data-step-row*='['])");
    expect([...top].map((e) => e.getAttribute("data-step-row"))).toEqual(["fetch", "process", "sub"]);
    const graph = await screen.findByRole("list", { name: "graph" });
    expect(within(graph).getAllByRole("listitem").map((l) => l.textContent)).toEqual(["fetch", "process x3", "sub"]);
    expect(screen.getByTestId("child-job")).toHaveAttribute("href", `/jobs/${CHILD}`);
    expect(screen.getByTestId("parent-job")).toHaveAttribute("href", "/jobs/77777777-2222-3333-4444-555555555555");
    expect(screen.getByTestId("parent-job")).toHaveTextContent("(step fan)");
    // The parent link says where the sub-job came from; the header does not
    // spell its source_id out as well.
    expect(screen.queryByText(/77777777-2222-3333-4444-555555555555\/fan/)).toBeNull();
    // Collapse the loop.
    await user.click(screen.getByRole("button", { name: "Hide the 3 instances of process" }));
    expect(screen.queryByRole("list", { name: "Instances of process" })).toBeNull();
  });

  it("follows the server's shapes: a sub-job wait is not an approval, loop fields and items, the decision in the output, hook links", async () => {
    const calls = mockApi({
      [`GET /api/jobs/${ID}`]: () =>
        job(
          [
            st("sub", "suspended", { action_type: "task", child_job_id: CHILD }),
            st("fan", "pending", { input: { items: ["eu", "us"] }, instances: ["fan[0]", "fan[1]"] }),
            st("fan[0]", "completed", { loop: "fan", loop_index: 0 }),
            st("fan[1]", "running", { loop: "fan", loop_index: 1 }),
            st("ok", "completed", { action_type: "approval", output: { approved: true, approved_by: "ann@example.com", comment: "looks good" } }),
            st("no", "failed", { action_type: "approval", output: { approved: false, rejected_by: "bob@example.com", rejection_reason: "too late" } }),
            st("gate", "suspended", { action_type: "approval", output: { message: "Ship?", timeout_at: "2026-12-07T10:00:00Z" } }),
          ],
          { hooks: [{ job_id: CHILD, event: "on_suspended", task_name: "notify", status: "completed" }] },
        ),
      [`POST /api/jobs/${ID}/steps/gate/approve`]: () => ({ status: "ok" }),
    });
    const user = userEvent.setup();
    renderJob();
    expect(await screen.findByRole("region", { name: "Approval: gate" })).toHaveTextContent("Ship?");
    expect(screen.getByText(/Fails if undecided by/)).toBeInTheDocument();
    expect(screen.queryByRole("region", { name: "Approval: sub" })).toBeNull();
    expect(document.querySelector("[data-step-row=sub] [data-status=suspended]")).toHaveTextContent("waiting for sub-job");
    // The loop step is pending while its instances run: the row shows theirs.
    expect(document.querySelector("[data-step-row=fan] [data-status]")).toHaveAttribute("data-status", "running");
    const inst = screen.getByRole("list", { name: "Instances of fan" });
    expect(within(inst).getByText('item "us"')).toBeInTheDocument();
    const decisions = screen.getAllByTestId("approval-decision").map((e) => e.textContent);
    expect(decisions).toEqual(["Approved by ann@example.com: looks good", "Rejected by bob@example.com: too late"]);
    expect(screen.getByTestId("hook-jobs")).toHaveTextContent("on_suspended: notify");
    // Approving with a comment sends it as the reference's "message".
    await user.click(screen.getByRole("button", { name: "Approve" }));
    await user.type(screen.getByLabelText(/Comment/), "go ahead");
    await user.click(screen.getByRole("button", { name: "Approve step" }));
    await waitFor(() => expect(calls.some((c) => c.method === "POST")).toBe(true));
    expect(calls.find((c) => c.method === "POST")?.body).toEqual({ approved: true, message: "go ahead" });
  });

  it("shows the first instances of a big loop and the rest on demand", async () => {
    const many = Array.from({ length: 45 }, (_, i) => st(`p[${i}]`, "completed"));
    mockApi({ [`GET /api/jobs/${ID}`]: () => job([st("p", "completed"), ...many], { status: "completed" }) });
    const user = userEvent.setup();
    renderJob();
    const inst = await screen.findByRole("list", { name: "Instances of p" });
    expect(inst.querySelectorAll("[data-step-row]")).toHaveLength(20);
    await user.click(screen.getByRole("button", { name: "Show all 45 instances" }));
    expect(inst.querySelectorAll("[data-step-row]")).toHaveLength(45);
  });
});

describe("JobPage: following a link to another job", () => {
  const parent = () => job([st("build", "completed"), st("sub", "running", { action_type: "task", child_job_id: CHILD })]);

  it("shows the sub-job, not the job it came from, and no step of it selected", async () => {
    mockApi({
      [`GET /api/jobs/${ID}`]: parent,
      [`GET /api/jobs/${CHILD}`]: () => job([st("clean", "completed")], { job_id: CHILD, task_name: "clean-cache", status: "completed", parent_job_id: ID }),
    });
    const user = userEvent.setup();
    renderJob();
    await user.click(await screen.findByRole("button", { name: /^build/ }));
    expect(screen.getByTestId("log")).toHaveTextContent(`log of ${ID} build`);
    await user.click(screen.getByTestId("child-job"));
    expect(await screen.findByRole("heading", { name: /clean-cache/ })).toBeInTheDocument();
    expect(screen.queryByRole("heading", { name: /deploy/ })).toBeNull();
    expect(screen.getByTestId("log").textContent).toBe(`log of ${CHILD} `);
    expect(screen.getByRole("button", { name: /^clean/ })).toHaveAttribute("aria-pressed", "false");
  });

  it("shows a job that cannot be loaded as an error, not the previous job under it", async () => {
    mockApi({
      [`GET /api/jobs/${ID}`]: parent,
      [`GET /api/jobs/${CHILD}`]: () => [404, { error: `job ${CHILD} not found` }],
    });
    const user = userEvent.setup();
    renderJob();
    await user.click(await screen.findByTestId("child-job"));
    expect(await screen.findByRole("alert")).toHaveTextContent(`job ${CHILD} not found`);
    expect(screen.queryByRole("heading", { name: /deploy/ })).toBeNull();
    expect(screen.queryByText("build")).toBeNull();
  });
});

describe("JobPage: a hook job", () => {
  it("links the job it reports on, and neither a task page nor a re-run of its _hook: task (there is no such task)", async () => {
    mockApi({
      [`GET /api/jobs/${ID}`]: () => job([st("notify", "completed")], { task_name: "_hook:notify", status: "completed", source_type: "hook", source_id: CHILD }),
    });
    renderJob();
    expect(await screen.findByTestId("hook-of")).toHaveAttribute("href", `/jobs/${CHILD}`);
    expect(screen.queryByRole("link", { name: "Re-run" })).toBeNull();
    expect(document.querySelector('a[href^="/tasks/"]')).toBeNull();
    expect(screen.getByText(/default\/_hook:notify/)).toBeInTheDocument();
  });
});

describe("JobPage: a job that does not exist", () => {
  it("says so once and does not ask again every second", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      const calls = mockApi({ [`GET /api/jobs/${ID}`]: () => [404, { error: `job ${ID} not found` }] });
      renderJob();
      expect(await screen.findByRole("alert")).toHaveTextContent(`job ${ID} not found`);
      await vi.advanceTimersByTimeAsync(5000);
      expect(calls.filter((c) => c.path === `/api/jobs/${ID}`)).toHaveLength(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it("keeps asking while the server does not answer, and shows the job once it does", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      let up = false;
      vi.stubGlobal(
        "fetch",
        vi.fn(async () => {
          if (!up) throw new TypeError("Failed to fetch");
          return new Response(JSON.stringify(job([st("build", "running")])), { status: 200, headers: { "Content-Type": "application/json" } });
        }),
      );
      renderJob();
      expect(await screen.findByRole("alert")).toHaveTextContent("The server did not answer");
      up = true;
      await vi.advanceTimersByTimeAsync(1500);
      expect(await screen.findByRole("heading", { name: /deploy/ })).toBeInTheDocument();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("JobPage: big jobs", () => {
  it("reloads a running job once a second, and less often the more steps it has", () => {
    expect([0, 3, 1000, 4000, 10_003].map(jobPollMs)).toEqual([1000, 1000, 1000, 4000, 10_000]);
  });

  it("fetches a running 5,000-step job once, then 5 s later, not every second", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      const many = Array.from({ length: 4999 }, (_, i) => st(`p[${i}]`, "ready"));
      const calls = mockApi({ [`GET /api/jobs/${ID}`]: () => job([st("p", "running"), ...many]) });
      const gets = () => calls.filter((c) => c.path === `/api/jobs/${ID}`).length;
      renderJob();
      await screen.findByRole("list", { name: "Instances of p" });
      await vi.advanceTimersByTimeAsync(3500);
      expect(gets()).toBe(1);
      await vi.advanceTimersByTimeAsync(2000);
      expect(gets()).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });
});
