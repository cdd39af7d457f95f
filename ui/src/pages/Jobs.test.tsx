import { render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter, Route, Routes } from "react-router";
import { afterEach, describe, expect, it, vi } from "vitest";
import { mockApi } from "@/test/fetchmock";
import Jobs from "./Jobs";

afterEach(() => vi.unstubAllGlobals());

describe("Jobs", () => {
  it("filters by a task name with a space in it (as typed, only the ends trimmed)", async () => {
    const calls = mockApi({
      "GET /api/workspaces": () => [{ name: "default" }],
      "GET /api/jobs?limit=50": () => ({ items: [], total: 0 }),
      "GET /api/jobs?task=my+task&limit=50": () => ({
        items: [{ job_id: "11111111-2222-3333-4444-555555555555", workspace: "default", task_name: "my task", status: "completed", source_type: "api", created_at: "2026-12-07T10:00:00Z" }],
        total: 1,
      }),
    });
    render(
      <MemoryRouter initialEntries={["/jobs"]}>
        <Routes>
          <Route path="/jobs" element={<Jobs />} />
        </Routes>
      </MemoryRouter>,
    );
    const user = userEvent.setup();
    await screen.findByText("No job matches these filters.");
    await user.type(screen.getByLabelText("Task"), "my task ");
    expect(screen.getByLabelText("Task")).toHaveValue("my task ");
    expect(await screen.findByText("1 job")).toBeInTheDocument();
    await waitFor(() => expect(calls.some((c) => c.path === "/api/jobs?task=my+task&limit=50")).toBe(true));
    expect(calls.some((c) => c.path.includes("task=mytask"))).toBe(false);
  });
  it("filters by status skipped (a trigger's tick recorded without running)", async () => {
    mockApi({
      "GET /api/workspaces": () => [{ name: "default" }],
      "GET /api/jobs?status=skipped&limit=50": () => ({
        items: [{ job_id: "11111111-2222-3333-4444-555555555555", workspace: "default", task_name: "etl", status: "skipped", source_type: "trigger", source_id: "default/hourly", created_at: "2026-12-07T10:00:00Z" }],
        total: 1,
      }),
    });
    render(
      <MemoryRouter initialEntries={["/jobs?status=skipped"]}>
        <Routes>
          <Route path="/jobs" element={<Jobs />} />
        </Routes>
      </MemoryRouter>,
    );
    expect(await screen.findByText("1 job")).toBeInTheDocument();
    expect(screen.getByRole("option", { name: "skipped" })).toBeInTheDocument();
    expect(screen.getByLabelText("Status")).toHaveValue("skipped");
  });
  it("a page past the last (a bookmark after jobs were removed) says so, and Previous goes to the last page", async () => {
    const j = (i: number) => ({ job_id: `00000000-0000-0000-0000-00000000000${i}`, workspace: "default", task_name: `t${i}`, status: "completed", source_type: "api", created_at: "2026-12-07T10:00:00Z" });
    mockApi({
      "GET /api/workspaces": () => [{ name: "default" }],
      "GET /api/jobs?limit=50&offset=4950": () => ({ items: [], total: 60 }),
      "GET /api/jobs?limit=50&offset=50": () => ({ items: [j(1)], total: 60 }),
    });
    render(
      <MemoryRouter initialEntries={["/jobs?page=99"]}>
        <Routes>
          <Route path="/jobs" element={<Jobs />} />
        </Routes>
      </MemoryRouter>,
    );
    expect(await screen.findByText("No jobs on page 100: there are 2 pages.")).toBeInTheDocument();
    expect(screen.getByText("page 100 of 2")).toBeInTheDocument();
    await userEvent.setup().click(screen.getByRole("button", { name: "Previous page" }));
    expect(await screen.findByRole("link", { name: /t1/ })).toBeInTheDocument();
    expect(screen.getByText("page 2 of 2")).toBeInTheDocument();
  });
});
