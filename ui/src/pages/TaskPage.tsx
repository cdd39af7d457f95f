import { useMemo } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router";
import { DataTable, Empty, ErrorBox, narrowOnly, PageHeader, rowClass, Spinner, wideOnly } from "@/components/common";
import { FlowCard } from "@/components/FlowCard";
import { JobTable } from "@/components/JobTable";
import { RunForm } from "@/components/RunForm";
import { Card, CardContent, CardHeader, CardTitle } from "@/components/ui/card";
import { api } from "@/lib/api";
import { flowSteps } from "@/lib/flow";
import { useLoad, useTitle } from "@/lib/hooks";
import type { DurationStats } from "@/lib/types";
import { formatDuration, formatTime, timeAgo } from "@/lib/utils";

function StatRow({ label, s }: { label: string; s: DurationStats }) {
  return (
    <tr className={rowClass}>
      <th scope="row" className="px-3 py-1.5 text-left font-medium wrap-anywhere">
        {label}
        <div className={`text-xs font-normal text-[var(--muted)] tabular-nums ${narrowOnly.sm}`}>
          range {formatDuration(s.min_ms)}–{formatDuration(s.max_ms)}
        </div>
      </th>
      <td className="px-3 py-1.5 tabular-nums">{s.sample_size}</td>
      <td className="px-3 py-1.5 tabular-nums">{formatDuration(s.p50_ms)}</td>
      <td className="px-3 py-1.5 tabular-nums">{formatDuration(s.p95_ms)}</td>
      <td className={`px-3 py-1.5 tabular-nums ${wideOnly.sm}`}>{formatDuration(s.min_ms)}</td>
      <td className={`px-3 py-1.5 tabular-nums ${wideOnly.sm}`}>{formatDuration(s.max_ms)}</td>
    </tr>
  );
}

export default function TaskPage() {
  const { ws = "", task = "" } = useParams();
  const [params] = useSearchParams();
  const rerun = params.get("rerun");
  const navigate = useNavigate();
  useTitle(task);
  const detail = useLoad(() => api.task(ws, task), [ws, task]);
  const steps = useMemo(() => flowSteps(detail.data?.flow), [detail.data]);
  const previous = useLoad(async () => (rerun ? (await api.job(rerun)).input ?? {} : null), [rerun]);
  const triggers = useLoad(async () => (await api.triggers(ws)).filter((t) => t.task === task), [ws, task], 30_000);
  const runs = useLoad(() => api.jobs({ workspace: ws, task, limit: 10 }), [ws, task], 3000);
  const stats = useLoad(() => api.taskStats(ws, task), [ws, task], 30_000);

  if (detail.error) return <ErrorBox error={detail.error} onRetry={detail.reload} />;
  const t = detail.data;
  if (!t) return <Spinner />;

  return (
    <div>
      <PageHeader
        title={t.name}
        sub={
          <>
            <Link to="/tasks" className="hover:underline">Tasks</Link> / {ws}
            {t.folder ? ` / ${t.folder}` : ""} · {t.mode}
            {t.description && <p className="mt-1 text-[var(--fg)]">{t.description}</p>}
          </>
        }
      />
      <div className="grid grid-cols-1 gap-4 lg:grid-cols-5">
        <Card className="lg:col-span-2">
          <CardHeader>
            <CardTitle>{rerun ? "Run again" : "Run"}</CardTitle>
            {rerun && <span className="text-xs text-[var(--muted)]">inputs of job {rerun.slice(0, 8)}</span>}
          </CardHeader>
          <CardContent>
            {rerun && previous.loading ? (
              <Spinner />
            ) : (
              <>
                {previous.error && <ErrorBox error={previous.error} onRetry={previous.reload} />}
                <RunForm
                  key={rerun ?? "new"}
                  input={t.input}
                  previous={previous.data}
                  onRun={async (input) => {
                    const { job_id } = await api.execute(ws, task, input);
                    navigate(`/jobs/${job_id}`);
                  }}
                />
              </>
            )}
          </CardContent>
        </Card>
        <FlowCard className="lg:col-span-3" note={`${steps.length} steps`} steps={steps} />
        <Card className="lg:col-span-2">
          <CardHeader>
            <CardTitle>Triggers</CardTitle>
          </CardHeader>
          {triggers.error && <ErrorBox error={triggers.error} />}
          {triggers.data?.length === 0 && <Empty>No trigger starts this task.</Empty>}
          <ul className="divide-y divide-[var(--border)]">
            {triggers.data?.map((tr) => (
              <li key={tr.name} className="px-4 py-2 text-sm">
                <div className="font-medium">
                  {tr.name} <span className="font-normal text-[var(--muted)]">{tr.type}{tr.enabled === false ? " · disabled" : ""}</span>
                </div>
                {tr.cron && <div className="font-mono text-xs">{tr.cron}</div>}
                {tr.next_fire_at && (
                  <div className="text-xs text-[var(--muted)]" title={formatTime(tr.next_fire_at)}>
                    next fire {timeAgo(tr.next_fire_at)} ({formatTime(tr.next_fire_at)})
                  </div>
                )}
              </li>
            ))}
          </ul>
        </Card>
        <Card className="lg:col-span-3">
          <CardHeader>
            <CardTitle>Duration</CardTitle>
            <span className="text-xs text-[var(--muted)]">last {stats.data?.window ?? 50} completed runs</span>
          </CardHeader>
          {stats.error && <ErrorBox error={stats.error} />}
          {stats.data &&
            (stats.data.task.sample_size === 0 ? (
              <Empty>No completed run yet.</Empty>
            ) : (
              <DataTable
                columns={["", "runs", "p50", "p95", { label: "min", from: "sm" }, { label: "max", from: "sm" }]}
                thClassName="px-3 py-1.5 font-medium"
                footer={stats.data.task.sample_size < 5 && <p className="px-3 py-2 text-xs text-[var(--muted)]">Fewer than 5 runs: too few to trust the percentiles.</p>}
              >
                <StatRow label="whole task" s={stats.data.task} />
                {stats.data.steps.map((s) => (
                  <StatRow key={s.step_name} label={s.step_name} s={s} />
                ))}
              </DataTable>
            ))}
        </Card>
        <Card className="lg:col-span-5">
          <CardHeader>
            <CardTitle>Recent runs</CardTitle>
            <Link to={`/jobs?workspace=${encodeURIComponent(ws)}&task=${encodeURIComponent(task)}`} className="text-xs text-sky-700 hover:underline dark:text-sky-400">
              All runs{runs.data ? ` (${runs.data.total})` : ""}
            </Link>
          </CardHeader>
          {runs.data?.items.length === 0 && <Empty>This task has not run yet.</Empty>}
          {runs.data && runs.data.items.length > 0 && <JobTable jobs={runs.data.items} compact />}
        </Card>
      </div>
    </div>
  );
}
