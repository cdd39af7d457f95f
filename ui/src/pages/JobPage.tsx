import { ChevronDown, ChevronRight, CornerLeftUp, ExternalLink, RotateCcw, Square } from "lucide-react";
import { useMemo, useState } from "react";
import { Link, useParams } from "react-router";
import { ErrorBox, PageHeader, Spinner } from "@/components/common";
import { ApprovalCard, decisionText } from "@/components/Approval";
import { ConfirmDialog } from "@/components/ConfirmDialog";
import { FlowCard } from "@/components/FlowCard";
import { Json } from "@/components/Json";
import { LogViewer } from "@/components/LogViewer";
import { StatusBadge } from "@/components/status";
import { Timeline } from "@/components/Timeline";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardHeader, CardTitle } from "@/components/ui/card";
import { Tabs, TabsContent, TabsList, TabsTrigger } from "@/components/ui/tabs";
import { api } from "@/lib/api";
import { jobSteps } from "@/lib/flow";
import { awaitsApproval, groupSteps, instanceItem, loopSummary, suspendedLabel } from "@/lib/loops";
import { useLoad, useNow, useTitle } from "@/lib/hooks";
import type { Job, Step } from "@/lib/types";
import { durationBetween, formatDuration, formatTime, sourceLabel } from "@/lib/utils";

// skipped: a trigger's tick recorded without running (concurrency: skip).
const terminal = (s: string) => s === "completed" || s === "failed" || s === "cancelled" || s === "skipped";

function CancelButton({ job, onDone }: { job: Job; onDone: () => void }) {
  return (
    <ConfirmDialog
      trigger={
        <Button variant="destructive" size="sm">
          <Square className="h-4 w-4" aria-hidden /> Cancel job
        </Button>
      }
      title="Cancel this job?"
      description="Steps that have not started are cancelled at once; running steps are stopped on their workers."
      keep="Keep running"
      confirm="Cancel job"
      busyLabel="Cancelling…"
      onConfirm={async () => {
        await api.cancel(job.job_id);
        onDone();
      }}
    />
  );
}

/** Loops with more instances than this show the first ones and a button. */
export const INSTANCES_SHOWN = 20;

/** How often a running job's page reloads the job: every second, and for a
 * job of more than 1,000 steps once per second per 1,000 steps, at most every
 * 10 s. Each reload fetches and draws every step: a 10,000-step job's is
 * about 3 MB, and reloading it each second kept the server and the page busy
 * (the page's main thread more than a third of the time). */
export function jobPollMs(steps: number): number {
  return Math.min(10_000, Math.max(1_000, steps));
}

export function StepRow({
  s,
  now,
  selected,
  onSelect,
  instances = [],
  isSelected,
  nested = false,
  loop,
}: {
  s: Step;
  now: number;
  selected: boolean;
  onSelect: (name: string) => void;
  instances?: Step[];
  isSelected?: (name: string) => boolean;
  nested?: boolean;
  loop?: Step;
}) {
  const [open, setOpen] = useState(true);
  const [all, setAll] = useState(false);
  const decision = decisionText(s);
  const item = instanceItem(s, loop);
  const shown = all ? instances : instances.slice(0, INSTANCES_SHOWN);
  return (
    <li className={selected ? "bg-sky-50 dark:bg-sky-950/50" : undefined} data-step-row={s.step_name}>
      <div className="flex items-center">
        {instances.length > 0 && (
          <button
            type="button"
            className="ml-2 rounded p-1 hover:bg-slate-100 dark:hover:bg-slate-800"
            onClick={() => setOpen(!open)}
            aria-expanded={open}
            aria-label={`${open ? "Hide" : "Show"} the ${instances.length} instances of ${s.step_name}`}
          >
            {open ? <ChevronDown className="h-4 w-4" aria-hidden /> : <ChevronRight className="h-4 w-4" aria-hidden />}
          </button>
        )}
        <button
          type="button"
          className={`flex min-w-0 flex-1 flex-wrap items-center gap-x-3 gap-y-1 py-2 pr-4 text-left text-sm ${instances.length > 0 ? "pl-1" : nested ? "pl-10" : "pl-4"}`}
          onClick={() => onSelect(s.step_name)}
          aria-pressed={selected}
        >
          <span className="font-medium">{s.step_name}</span>
          <StatusBadge status={s.status} label={s.status === "suspended" ? suspendedLabel(s) : undefined} />
          <span className="text-xs text-[var(--muted)]">
            {nested ? (item !== undefined ? `item ${JSON.stringify(item)}` : s.action_name) : `${s.action_name} · ${s.action_type}`}
            {instances.length > 0 ? ` · for_each: ${loopSummary(instances)}` : ""}
          </span>
          <span className="ml-auto text-xs tabular-nums text-[var(--muted)]">{formatDuration(durationBetween(s.started_at, s.completed_at, now))}</span>
        </button>
      </div>
      {s.child_job_id && (
        <p className={`pb-2 text-xs ${nested ? "pl-10" : "pl-4"}`}>
          <Link className="inline-flex items-center gap-1 text-sky-800 hover:underline dark:text-sky-300" to={`/jobs/${encodeURIComponent(s.child_job_id)}`} data-testid="child-job">
            <ExternalLink className="h-3.5 w-3.5" aria-hidden /> sub-job <span className="font-mono">{s.child_job_id.slice(0, 8)}</span>
          </Link>
        </p>
      )}
      {decision && (
        <p className="mx-4 mb-2 text-xs" data-testid="approval-decision">
          {decision}
        </p>
      )}
      {s.error_message && (
        <pre
          className={
            s.status === "failed"
              ? "mx-4 mb-2 whitespace-pre-wrap rounded border border-red-300 bg-red-50 p-2 font-mono text-xs text-red-800 dark:border-red-800 dark:bg-red-950 dark:text-red-200"
              : "mx-4 mb-2 whitespace-pre-wrap rounded border border-[var(--border)] bg-slate-50 p-2 font-mono text-xs text-[var(--muted)] dark:bg-slate-900"
          }
          data-testid="step-error"
        >
          {s.error_message}
        </pre>
      )}
      {selected && (
        <div className="space-y-3 px-4 pb-3">
          {(s.attempts?.length ?? 0) > 0 && (
            <table className="w-full text-xs">
              <caption className="mb-1 text-left font-medium">
                Attempts ({s.attempt ?? 0} of {s.max_attempts ?? 1})
              </caption>
              <thead className="text-left text-[var(--muted)]">
                <tr>
                  <th scope="col" className="py-1 pr-3 font-medium">#</th>
                  <th scope="col" className="py-1 pr-3 font-medium">status</th>
                  <th scope="col" className="py-1 pr-3 font-medium">exit</th>
                  <th scope="col" className="py-1 pr-3 font-medium">worker</th>
                  <th scope="col" className="py-1 pr-3 font-medium">duration</th>
                  <th scope="col" className="py-1 pr-3 font-medium">error</th>
                </tr>
              </thead>
              <tbody>
                {s.attempts!.map((a) => (
                  <tr key={a.attempt}>
                    <td className="py-1 pr-3">{a.attempt}</td>
                    <td className="py-1 pr-3"><StatusBadge status={a.status} /></td>
                    <td className="py-1 pr-3 tabular-nums">{a.exit_code ?? "—"}</td>
                    <td className="py-1 pr-3 font-mono">{a.worker_id?.slice(0, 8) ?? "—"}</td>
                    <td className="py-1 pr-3 tabular-nums">{formatDuration(durationBetween(a.started_at, a.completed_at, now))}</td>
                    <td className="py-1 pr-3 text-red-800 dark:text-red-300">{a.error_message ?? ""}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <div className="grid grid-cols-1 gap-3 md:grid-cols-2">
            <div>
              <h3 className="mb-1 text-xs font-medium">Input</h3>
              <Json value={s.input} />
            </div>
            <div>
              <h3 className="mb-1 text-xs font-medium">Output</h3>
              <Json value={s.output} />
            </div>
          </div>
        </div>
      )}
      {instances.length > 0 && open && (
        <ul className="divide-y divide-[var(--border)] border-t border-[var(--border)] bg-slate-50/60 dark:bg-slate-900/40" aria-label={`Instances of ${s.step_name}`}>
          {shown.map((i) => (
            <StepRow key={i.step_name} s={i} now={now} selected={isSelected?.(i.step_name) ?? false} onSelect={onSelect} nested loop={s} />
          ))}
          {instances.length > shown.length && (
            <li className="px-10 py-2">
              <Button variant="ghost" size="sm" onClick={() => setAll(true)}>
                Show all {instances.length} instances
              </Button>
            </li>
          )}
        </ul>
      )}
    </li>
  );
}

/** The job of the address. A link to another job (a sub-job, the parent, a
 * hook job) keeps this route: the view is keyed by the id so that it starts
 * afresh (no selected step, log filter or loaded data of the job before,
 * which stayed on screen under the new address until the new job arrived,
 * and for good when it could not be loaded). */
export default function JobPage() {
  const { id = "" } = useParams();
  return <JobView key={id} id={id} />;
}

function JobView({ id }: { id: string }) {
  const now = useNow(1000);
  const [selected, setSelected] = useState<string>("");
  const job = useLoad(() => api.job(id), [id], (j) => (terminal(j.status) ? false : jobPollMs(j.steps?.length ?? 0)));
  const j = job.data;
  // What depends on every step is worked out once per load, not at each
  // tick of the clock (each second: for a 10,000-step job, all 10,000 steps
  // were regrouped every second); the graph and the log's step list only
  // when their contents change.
  const { dagKey, stepNames, groups, waiting } = useMemo(
    () => ({
      dagKey: j?.steps?.map((s) => `${s.step_name}:${s.status}`).join(","),
      stepNames: j?.steps?.map((s) => s.step_name).join("\n") ?? "",
      groups: groupSteps(j?.steps ?? []),
      waiting: (j?.steps ?? []).filter(awaitsApproval),
    }),
    [j],
  );
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const dagSteps = useMemo(() => (j ? jobSteps(j) : []), [dagKey]);
  const logSteps = useMemo(() => (stepNames ? stepNames.split("\n") : []), [stepNames]);
  useTitle(j ? `${j.task_name} ${j.status}` : "Job");
  if (job.error && !j) return <ErrorBox error={job.error} onRetry={job.reload} />;
  if (!j) return <Spinner />;
  const pick = (n: string) => setSelected((x) => (x === n ? "" : n));
  // A hook job's task (_hook:<action>) is no task of the workspace: no task
  // page to link, nothing to re-run (both were a "task not found" page).
  const runnable = !j.task_name.startsWith("_hook:");

  return (
    <div>
      <PageHeader
        title={
          <span className="flex items-center gap-2">
            {j.task_name} <StatusBadge status={j.status} className="text-sm" />
          </span>
        }
        sub={
          <>
            {runnable ? (
              <Link className="hover:underline" to={`/tasks/${encodeURIComponent(j.workspace)}/${encodeURIComponent(j.task_name)}`}>
                {j.workspace}/{j.task_name}
              </Link>
            ) : (
              `${j.workspace}/${j.task_name}`
            )}{" "}
            · job <span className="font-mono">{j.job_id}</span> ·{" "}
            {j.source_type === "hook" && j.source_id ? (
              <Link className="hover:underline" to={`/jobs/${encodeURIComponent(j.source_id)}`} data-testid="hook-of">
                hook of job <span className="font-mono">{j.source_id.slice(0, 8)}</span>
              </Link>
            ) : (
              // A sub-job's parent and step are the link that follows.
              (j.source_type === "task" && j.parent_job_id ? j.source_type : sourceLabel(j))
            )}
            {j.parent_job_id && (
              <>
                {" "}
                ·{" "}
                <Link className="inline-flex items-center gap-0.5 hover:underline" to={`/jobs/${encodeURIComponent(j.parent_job_id)}`} data-testid="parent-job">
                  <CornerLeftUp className="h-3.5 w-3.5" aria-hidden /> parent job <span className="font-mono">{j.parent_job_id.slice(0, 8)}</span>
                  {j.parent_step_name ? ` (step ${j.parent_step_name})` : ""}
                </Link>
              </>
            )}{" "}
            · created {formatTime(j.created_at)} ·{" "}
            {j.status === "skipped" ? (
              "not run: the trigger's previous job was unfinished (concurrency: skip)"
            ) : (
              <>
                {terminal(j.status) ? "took" : "running for"} {formatDuration(durationBetween(j.started_at, j.completed_at, now))}
              </>
            )}
          </>
        }
      >
        {runnable && (
          <Button asChild variant="outline" size="sm">
            <Link to={`/tasks/${encodeURIComponent(j.workspace)}/${encodeURIComponent(j.task_name)}?rerun=${j.job_id}`}>
              <RotateCcw className="h-4 w-4" aria-hidden /> Re-run
            </Link>
          </Button>
        )}
        {!terminal(j.status) && <CancelButton job={j} onDone={job.reload} />}
      </PageHeader>
      {job.error && <ErrorBox error={job.error} />}
      {waiting.length > 0 && (
        <div className="mb-4 space-y-3">
          {waiting.map((s) => (
            <ApprovalCard
              key={s.step_name}
              step={s}
              onDecide={async (step, approved, reason, message) => {
                await api.approve(j.job_id, step, approved, reason, message);
                job.reload();
              }}
            />
          ))}
        </div>
      )}
      {(j.hooks?.length ?? 0) > 0 && (
        <p className="mb-3 flex flex-wrap gap-x-3 gap-y-1 text-sm" data-testid="hook-jobs">
          <span className="text-[var(--muted)]">Hook jobs:</span>
          {j.hooks!.map((h) => (
            <Link key={h.job_id} className="inline-flex items-center gap-1 text-sky-800 hover:underline dark:text-sky-300" to={`/jobs/${encodeURIComponent(h.job_id)}`}>
              {h.event ? `${h.event}: ` : ""}
              {h.task_name} <StatusBadge status={h.status} />
            </Link>
          ))}
        </p>
      )}
      <div className="grid grid-cols-1 gap-4 xl:grid-cols-2">
        <FlowCard note="select a step to filter its logs" steps={dagSteps} selected={selected} onSelect={(n) => setSelected((s) => (s === n ? "" : n))} />
        <Card>
          <CardHeader>
            <CardTitle>Steps</CardTitle>
          </CardHeader>
          <ul className="divide-y divide-[var(--border)]">
            {groups.map(({ step: s, instances }) => (
              <StepRow key={s.step_name} s={s} now={now} selected={selected === s.step_name} onSelect={pick} instances={instances} isSelected={(n) => n === selected} />
            ))}
          </ul>
        </Card>
      </div>
      <Card className="mt-4">
        <Tabs defaultValue="logs">
          <TabsList>
            <TabsTrigger value="logs">Logs</TabsTrigger>
            <TabsTrigger value="timeline">Timeline</TabsTrigger>
            <TabsTrigger value="output">Output</TabsTrigger>
            <TabsTrigger value="input">Input</TabsTrigger>
          </TabsList>
          <TabsContent value="logs" forceMount className="data-[state=inactive]:hidden">
            <LogViewer jobId={j.job_id} steps={logSteps} initialStep={selected} />
          </TabsContent>
          <TabsContent value="timeline">
            <Timeline job={j} now={now} />
          </TabsContent>
          <TabsContent value="output">
            <CardContent>
              <Json value={j.output} />
            </CardContent>
          </TabsContent>
          <TabsContent value="input">
            <CardContent>
              <Json value={j.input} />
            </CardContent>
          </TabsContent>
        </Tabs>
      </Card>
    </div>
  );
}
