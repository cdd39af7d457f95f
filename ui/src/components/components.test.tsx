import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { MemoryRouter } from "react-router";
import { bucketJobs, ThroughputChart } from "./ThroughputChart";
import { JobTable } from "./JobTable";
import { StatusBadge } from "./status";
import { Timeline, TIMELINE_ROWS } from "./Timeline";
import { groupByFolder, matches } from "@/pages/Tasks";
import { safeNext } from "@/pages/Login";
import { readOidcFragment, getAccessToken, jwtExpiry, setTokens } from "@/lib/auth";
import type { Job, Task } from "@/lib/types";

const job = (id: string, status: Job["status"], created: string): Job => ({
  job_id: id,
  workspace: "default",
  task_name: "t",
  status,
  source_type: "api",
  created_at: created,
});

describe("components", () => {
  it("StatusBadge says the status in words", () => {
    render(<StatusBadge status="failed" />);
    expect(screen.getByText("failed")).toHaveAttribute("data-status", "failed");
  });

  it("JobTable links each job", () => {
    render(
      <MemoryRouter>
        <JobTable jobs={[job("00000000-0000-0000-0000-000000000001", "running", new Date().toISOString())]} />
      </MemoryRouter>,
    );
    expect(screen.getByRole("link", { name: "t" })).toHaveAttribute("href", "/jobs/00000000-0000-0000-0000-000000000001");
    expect(screen.getByText("running")).toBeInTheDocument();
  });

  it("bucketJobs counts jobs per hour by outcome; the chart describes itself", () => {
    const now = Date.parse("2026-12-06T10:30:00Z");
    const b = bucketJobs(
      [job("a", "completed", "2026-12-06T10:10:00Z"), job("b", "failed", "2026-12-06T10:20:00Z"), job("c", "running", "2026-12-06T08:05:00Z"), job("d", "completed", "2026-12-01T00:00:00Z")],
      now,
    );
    expect(b).toHaveLength(24);
    expect(b[23]).toMatchObject({ completed: 1, failed: 1, other: 0 });
    expect(b[21]).toMatchObject({ completed: 0, failed: 0, other: 1 });
    render(<ThroughputChart buckets={b} />);
    expect(screen.getByRole("img")).toHaveAccessibleName("Jobs per hour over the last 24 hours: 3 in all");
  });

  it("tasks group by folder and match a search", () => {
    const ts: Task[] = [
      { name: "b", mode: "distributed", input: [], folder: "ops" },
      { name: "a", mode: "distributed", input: [], description: "deploy the app" },
    ];
    expect(groupByFolder(ts).map(([f, t]) => [f, t.map((x) => x.name)])).toEqual([
      ["", ["a"]],
      ["ops", ["b"]],
    ]);
    expect(ts.filter((t) => matches(t, "DEPLOY")).map((t) => t.name)).toEqual(["a"]);
    expect(ts.filter((t) => matches(t, "ops")).map((t) => t.name)).toEqual(["b"]);
  });

  it("login only redirects within the app", () => {
    expect(safeNext("/jobs?status=failed")).toBe("/jobs?status=failed");
    expect(safeNext("//evil.example")).toBe("/");
    expect(safeNext("https://evil.example")).toBe("/");
    expect(safeNext(null)).toBe("/");
    // A browser reads a backslash as a slash and drops tabs and newlines:
    // these are //evil.example too (React Router refused them with an error
    // instead of the page).
    expect(safeNext("/\\evil.example")).toBe("/");
    expect(safeNext("/\t/evil.example")).toBe("/");
    expect(safeNext("/\n/evil.example")).toBe("/");
    expect(safeNext("/jobs/a\\b")).toBe("/");
  });

  it("an OIDC callback fragment signs in, or reports its error", () => {
    expect(readOidcFragment("#error=access%20denied")).toEqual({ ok: false, error: "access denied" });
    const payload = btoa(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + 900 }));
    const at = `h.${payload}.s`;
    expect(jwtExpiry(at)).toBeGreaterThan(Date.now());
    expect(readOidcFragment(`#access_token=${at}&refresh_token=r1`)).toEqual({ ok: true });
    expect(getAccessToken()).toBe(at);
    expect(localStorage.getItem("stroem-refresh-token")).toBe("r1");
    setTokens(null);
    expect(localStorage.getItem("stroem-refresh-token")).toBeNull();
  });

  it("Timeline: a running step the server started a little after the browser's now lasts 0, not a negative time", () => {
    const j: Job = {
      ...job("j", "running", "2026-12-07T10:00:00Z"),
      started_at: "2026-12-07T10:00:00Z",
      steps: [{ step_name: "build", action_name: "a", action_type: "shell", status: "running", started_at: "2026-12-07T10:00:03.200Z" }],
    };
    render(<Timeline job={j} now={Date.parse("2026-12-07T10:00:00Z")} />);
    expect(screen.getByText("0 ms")).toBeInTheDocument();
    expect(screen.queryByText(/^-/)).toBeNull();
    // The bar stays within the scale.
    const bar = screen.getByTitle(/^build: running/);
    expect(parseFloat(bar.style.left) + parseFloat(bar.style.width)).toBeLessThanOrEqual(100.5);
  });

  it("Timeline draws the first steps of a big job and the rest on demand, scaled to every step", async () => {
    const started = (i: number) => new Date(Date.parse("2026-12-06T10:00:00Z") + i * 1000).toISOString();
    // More steps than a spread into Math.max could take as arguments.
    const steps = Array.from({ length: 150_000 }, (_, i) => ({
      step_name: `s${i}`,
      action_name: "a",
      action_type: "shell",
      status: "completed" as const,
      started_at: started(i),
      completed_at: started(i + 1),
    }));
    const big: Job = { ...job("j", "completed", started(0)), started_at: started(0), completed_at: started(10), steps: steps.slice(0, 250) };
    const user = userEvent.setup();
    const { container, unmount } = render(<Timeline job={big} now={Date.now()} />);
    expect(container.querySelectorAll("[title$=' s']")).toHaveLength(TIMELINE_ROWS);
    // The scale spans the last step, not only the drawn ones.
    expect(screen.getByText("4m 10s")).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Show all 250 steps" }));
    expect(container.querySelectorAll("[title$=' s']")).toHaveLength(250);
    unmount();
    const huge = render(<Timeline job={{ ...big, steps }} now={Date.now()} />);
    expect(huge.container.querySelectorAll("[title$=' s']")).toHaveLength(TIMELINE_ROWS);
    expect(screen.getByRole("button", { name: "Show all 150000 steps" })).toBeInTheDocument();
  });
});
