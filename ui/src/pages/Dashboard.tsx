import { Link } from "react-router";
import { Empty, ErrorBox, PageHeader, Spinner } from "@/components/common";
import { JobTable } from "@/components/JobTable";
import { bucketJobs, ThroughputChart } from "@/components/ThroughputChart";
import { Card, CardContent, CardHeader, CardTitle } from "@/components/ui/card";
import { api } from "@/lib/api";
import { useLoad, useTitle } from "@/lib/hooks";
import type { Job } from "@/lib/types";

function Stat({ label, value, to }: { label: string; value: number | string | undefined; to: string }) {
  return (
    <Link to={to} className="block rounded-lg border border-[var(--border)] bg-[var(--panel)] p-4 hover:border-sky-400">
      <div className="text-xs uppercase tracking-wide text-[var(--muted)]">{label}</div>
      <div className="mt-1 text-2xl font-semibold tabular-nums">{value ?? "…"}</div>
    </Link>
  );
}

/** A card of a few jobs, with a link to all of them. */
function JobsCard({ title, all, jobs, empty }: { title: string; all?: { to: string; label: string }; jobs: Job[] | undefined; empty: string }) {
  return (
    <Card>
      <CardHeader>
        <CardTitle>{title}</CardTitle>
        {all && (
          <Link to={all.to} className="text-xs text-sky-700 hover:underline dark:text-sky-400">
            {all.label}
          </Link>
        )}
      </CardHeader>
      {!jobs ? <Spinner /> : jobs.length ? <JobTable jobs={jobs} compact /> : <Empty>{empty}</Empty>}
    </Card>
  );
}

export default function Dashboard() {
  useTitle("Dashboard");
  const live = useLoad(
    async () => {
      const since = new Date(Date.now() - 24 * 3600_000).toISOString();
      const [running, pending, recent, failures, failedDay, day, workers] = await Promise.all([
        api.jobs({ status: "running", limit: 10 }),
        api.jobs({ status: "pending", limit: 1 }),
        api.jobs({ limit: 10 }),
        api.jobs({ status: "failed", limit: 5 }),
        api.jobs({ status: "failed", since, limit: 1 }),
        api.jobs({ since, limit: 1000 }),
        api.workers(),
      ]);
      return { running, pending, recent, failures, failedDay, day, workers };
    },
    [],
    3000,
  );
  const d = live.data;
  const online = d?.workers.items.filter((w) => w.status === "active").length;
  const failed24 = d?.failedDay.total;

  return (
    <div>
      <PageHeader title="Dashboard" />
      {live.error && <ErrorBox error={live.error} />}
      <div className="grid grid-cols-2 gap-3 lg:grid-cols-4">
        <Stat label="Running" value={d?.running.total} to="/jobs?status=running" />
        <Stat label="Pending" value={d?.pending.total} to="/jobs?status=pending" />
        <Stat label="Failed (24 h)" value={failed24} to="/jobs?status=failed&range=24h" />
        <Stat label="Workers online" value={d ? `${online} / ${d.workers.total}` : undefined} to="/workers" />
      </div>
      <div className="mt-4 grid grid-cols-1 gap-4 xl:grid-cols-2">
        <Card>
          <CardHeader>
            <CardTitle>Throughput, last 24 hours</CardTitle>
            <span className="text-xs text-[var(--muted)]">
              {d ? (d.day.total > d.day.items.length ? `latest ${d.day.items.length} of ${d.day.total} jobs` : `${d.day.total} jobs`) : ""}
            </span>
          </CardHeader>
          <CardContent>{d ? <ThroughputChart buckets={bucketJobs(d.day.items, Date.now())} /> : <Spinner />}</CardContent>
        </Card>
        <JobsCard title="Running now" jobs={d?.running.items} empty="Nothing is running." />
        <JobsCard title="Recent jobs" all={{ to: "/jobs", label: "All jobs" }} jobs={d?.recent.items} empty="No jobs yet. Run a task from the Tasks page." />
        <JobsCard title="Recent failures" all={{ to: "/jobs?status=failed", label: "All failures" }} jobs={d?.failures.items} empty="No failed jobs." />
      </div>
    </div>
  );
}
