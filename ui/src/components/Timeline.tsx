import { useState } from "react";
import { Button } from "@/components/ui/button";
import type { Job } from "@/lib/types";
import { formatDuration } from "@/lib/utils";
import { statusColor } from "./status";

/** A job with more started steps than this shows the bars of the first ones
 * and a button for the rest (the scale still spans every step). */
export const TIMELINE_ROWS = 200;

/** Gantt-like bars of each step's start and end within the job. */
export function Timeline({ job, now }: { job: Job; now: number }) {
  const [all, setAll] = useState(false);
  const steps = (job.steps ?? []).filter((s) => s.started_at);
  if (!job.started_at || steps.length === 0) return <p className="p-4 text-sm text-[var(--muted)]">No step has started yet.</p>;
  const t0 = Date.parse(job.started_at);
  // A loop, not Math.max(...): spreading tens of thousands of steps as
  // arguments can overflow the stack.
  let end = Math.max(job.completed_at ? Date.parse(job.completed_at) : 0, t0 + 1);
  // (A start after the browser's now, a clock behind the server's, counts.)
  for (const s of steps) end = Math.max(end, Date.parse(s.started_at!), s.completed_at ? Date.parse(s.completed_at) : now);
  const span = end - t0;
  const shown = all ? steps : steps.slice(0, TIMELINE_ROWS);
  return (
    <div className="space-y-1.5 p-4">
      {shown.map((s) => {
        const a = Date.parse(s.started_at!) - t0;
        // A running step's end is the browser's now: never before its start.
        const b = Math.max(a, (s.completed_at ? Date.parse(s.completed_at) : now) - t0);
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
      {shown.length < steps.length && (
        <Button variant="ghost" size="sm" onClick={() => setAll(true)}>
          Show all {steps.length} steps
        </Button>
      )}
      <div className="grid grid-cols-[8rem_1fr_4.5rem] gap-2 text-[10px] text-[var(--muted)] sm:grid-cols-[12rem_1fr_5rem]">
        <span />
        <div className="flex justify-between"><span>0</span><span>{formatDuration(span)}</span></div>
        <span />
      </div>
    </div>
  );
}
