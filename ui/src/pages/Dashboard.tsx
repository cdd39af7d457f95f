import { Link } from "react-router";
import { Empty, ErrorBox, PageHeader, Spinner } from "@/components/common";
import { JobTable } from "@/components/JobTable";
import { bucketJobs, ThroughputChart } from "@/components/ThroughputChart";
import { Card, CardContent, CardHeader, CardTitle } from "@/components/ui/card";
import { api } from "@/lib/api";
import { useLoad, useTitle } from "@/lib/hooks";

function Stat({ label, value, to }: { label: string; value: number | string | undefined; to: string }) {
  return (
    <Link to={to} className="block rounded-lg border border-[var(--border)] bg-[var(--panel)] p-4 hover:border-sky-400">
      <div className="text-xs uppercase tracking-wide text-[var(--muted)]">{label}</div>
      <div className="mt-1 text-2xl font-semibold tabular-nums">{value ?? "…"}</div>
    </Link>
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
        <Card>
          <CardHeader>
            <CardTitle>Running now</CardTitle>
          </CardHeader>
          {!d ? <Spinner /> : d.running.items.length ? <JobTable jobs={d.running.items} compact /> : <Empty>Nothing is running.</Empty>}
        </Card>
        <Card>
          <CardHeader>
            <CardTitle>Recent jobs</CardTitle>
            <Link to="/jobs" className="text-xs text-sky-700 hover:underline dark:text-sky-400">All jobs</Link>
          </CardHeader>
          {!d ? <Spinner /> : d.recent.items.length ? <JobTable jobs={d.recent.items} compact /> : <Empty>No jobs yet. Run a task from the Tasks page.</Empty>}
        </Card>
        <Card>
          <CardHeader>
            <CardTitle>Recent failures</CardTitle>
            <Link to="/jobs?status=failed" className="text-xs text-sky-700 hover:underline dark:text-sky-400">All failures</Link>
          </CardHeader>
          {!d ? <Spinner /> : d.failures.items.length ? <JobTable jobs={d.failures.items} compact /> : <Empty>No failed jobs.</Empty>}
        </Card>
      </div>
    </div>
  );
}
