import { ChevronLeft, ChevronRight } from "lucide-react";
import { useMemo } from "react";
import { useSearchParams } from "react-router";
import { Empty, ErrorBox, PageHeader, Spinner } from "@/components/common";
import { JobTable } from "@/components/JobTable";
import { Button } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { Input, Label, Select } from "@/components/ui/input";
import { api } from "@/lib/api";
import { useLoad, useTitle } from "@/lib/hooks";

export const PAGE_SIZE = 50;
const ranges: Record<string, number> = { "1h": 3600_000, "24h": 86400_000, "7d": 7 * 86400_000, "30d": 30 * 86400_000 };
const statuses = ["pending", "running", "completed", "failed", "cancelled", "skipped"];

export default function Jobs() {
  useTitle("Jobs");
  const [params, setParams] = useSearchParams();
  const status = params.get("status") ?? "";
  const workspace = params.get("workspace") ?? "";
  // As typed (a task's name may have spaces: trimming each keystroke made
  // "my task" "mytask"); the query leaves out only the ends' spaces.
  const taskInput = params.get("task") ?? "";
  const task = taskInput.trim();
  const range = params.get("range") ?? "";
  const page = Math.max(0, parseInt(params.get("page") ?? "0", 10) || 0);
  // The range's start is fixed when the filter is chosen (not every poll),
  // so pages stay stable while new jobs arrive.
  const since = useMemo(() => (ranges[range] ? new Date(Date.now() - ranges[range]).toISOString() : undefined), [range]);

  const set = (k: string, v: string) => {
    const p = new URLSearchParams(params);
    if (v) p.set(k, v);
    else p.delete(k);
    if (k !== "page") p.delete("page");
    setParams(p, { replace: k !== "page" });
  };

  const wss = useLoad(() => api.workspaces(), []);
  const jobs = useLoad(() => api.jobs({ status, workspace, task, since, limit: PAGE_SIZE, offset: page * PAGE_SIZE }), [status, workspace, task, since, page], 2000);
  const total = jobs.data?.total ?? 0;
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  // A page past the last (a bookmark, after jobs were removed): said as it
  // is, and Previous goes to the last page (not one back, of many empty).
  const past = !!jobs.data && page + 1 > pages;

  return (
    <div>
      <PageHeader title="Jobs" sub={jobs.data ? `${total} job${total === 1 ? "" : "s"}` : undefined} />
      <Card className="mb-4 grid grid-cols-2 gap-3 p-3 md:grid-cols-4">
        <div className="space-y-1">
          <Label htmlFor="f-status">Status</Label>
          <Select id="f-status" value={status} onChange={(e) => set("status", e.target.value)}>
            <option value="">any</option>
            {statuses.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </Select>
        </div>
        <div className="space-y-1">
          <Label htmlFor="f-ws">Workspace</Label>
          <Select id="f-ws" value={workspace} onChange={(e) => set("workspace", e.target.value)}>
            <option value="">any</option>
            {wss.data?.map((w) => (
              <option key={w.name}>{w.name}</option>
            ))}
          </Select>
        </div>
        <div className="space-y-1">
          <Label htmlFor="f-task">Task</Label>
          <Input id="f-task" placeholder="task name" value={taskInput} onChange={(e) => set("task", e.target.value)} />
        </div>
        <div className="space-y-1">
          <Label htmlFor="f-range">Created</Label>
          <Select id="f-range" value={range} onChange={(e) => set("range", e.target.value)}>
            <option value="">any time</option>
            <option value="1h">last hour</option>
            <option value="24h">last 24 hours</option>
            <option value="7d">last 7 days</option>
            <option value="30d">last 30 days</option>
          </Select>
        </div>
      </Card>
      {jobs.error && <ErrorBox error={jobs.error} />}
      <Card>
        {!jobs.data && !jobs.error && <Spinner />}
        {jobs.data?.items.length === 0 && <Empty>{past ? `No jobs on page ${page + 1}: there ${pages === 1 ? "is 1 page" : `are ${pages} pages`}.` : "No job matches these filters."}</Empty>}
        {jobs.data && jobs.data.items.length > 0 && <JobTable jobs={jobs.data.items} />}
      </Card>
      <nav className="mt-3 flex items-center justify-end gap-2 text-sm" aria-label="Pages">
        <span className="text-[var(--muted)]">
          page {page + 1} of {pages}
        </span>
        <Button variant="outline" size="sm" disabled={page === 0} onClick={() => set("page", String(past ? pages - 1 : page - 1))} aria-label="Previous page">
          <ChevronLeft className="h-4 w-4" />
        </Button>
        <Button variant="outline" size="sm" disabled={page + 1 >= pages} onClick={() => set("page", String(page + 1))} aria-label="Next page">
          <ChevronRight className="h-4 w-4" />
        </Button>
      </nav>
    </div>
  );
}
