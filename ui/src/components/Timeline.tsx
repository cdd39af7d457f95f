import type { Job } from "@/lib/types";
import { formatDuration } from "@/lib/utils";
import { statusColor } from "./status";

/** Gantt-like bars of each step's start and end within the job. */
export function Timeline({ job, now }: { job: Job; now: number }) {
  const steps = (job.steps ?? []).filter((s) => s.started_at);
  if (!job.started_at || steps.length === 0) return <p className="p-4 text-sm text-[var(--muted)]">No step has started yet.</p>;
  const t0 = Date.parse(job.started_at);
  const end = Math.max(...steps.map((s) => (s.completed_at ? Date.parse(s.completed_at) : now)), job.completed_at ? Date.parse(job.completed_at) : 0, t0 + 1);
  const span = end - t0;
  return (
    <div className="space-y-1.5 p-4">
      {steps.map((s) => {
        const a = Date.parse(s.started_at!) - t0;
        const b = (s.completed_at ? Date.parse(s.completed_at) : now) - t0;
        const c = statusColor[s.status] ?? statusColor.pending;
        return (
          <div key={s.step_name} className="grid grid-cols-[8rem_1fr_4.5rem] items-center gap-2 text-xs sm:grid-cols-[12rem_1fr_5rem]">
            <span className="truncate font-medium" title={s.step_name}>{s.step_name}</span>
            <div className="relative h-4 rounded bg-slate-100 dark:bg-slate-800">
              <div
                className="absolute top-0 h-4 rounded border"
                style={{ left: `${(a / span) * 100}%`, width: `${Math.max(0.5, ((b - a) / span) * 100)}%`, background: c.fill, borderColor: c.stroke }}
                title={`${s.step_name}: ${s.status}, ${formatDuration(b - a)}`}
              />
            </div>
            <span className="text-right tabular-nums">{formatDuration(b - a)}</span>
          </div>
        );
      })}
      <div className="grid grid-cols-[8rem_1fr_4.5rem] gap-2 text-[10px] text-[var(--muted)] sm:grid-cols-[12rem_1fr_5rem]">
        <span />
        <div className="flex justify-between"><span>0</span><span>{formatDuration(span)}</span></div>
        <span />
      </div>
    </div>
  );
}
