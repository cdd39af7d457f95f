import { Link } from "react-router";
import { useNow } from "@/lib/hooks";
import type { Job } from "@/lib/types";
import { durationBetween, formatDuration, formatTime, timeAgo } from "@/lib/utils";
import { StatusBadge } from "./status";

export function JobTable({ jobs, compact }: { jobs: Job[]; compact?: boolean }) {
  const now = useNow(1000);
  return (
    <div className="overflow-x-auto">
      <table className="w-full text-sm">
        <thead className="text-left text-xs uppercase tracking-wide text-[var(--muted)]">
          <tr className="border-b border-[var(--border)]">
            <th scope="col" className="px-3 py-2 font-medium">Task</th>
            <th scope="col" className="px-3 py-2 font-medium">Status</th>
            <th scope="col" className="px-3 py-2 font-medium">Created</th>
            <th scope="col" className="px-3 py-2 font-medium">Duration</th>
            {!compact && <th scope="col" className="px-3 py-2 font-medium">Source</th>}
            {!compact && <th scope="col" className="px-3 py-2 font-medium">Job</th>}
          </tr>
        </thead>
        <tbody>
          {jobs.map((j) => (
            <tr key={j.job_id} className="border-b border-[var(--border)] last:border-0 hover:bg-slate-50 dark:hover:bg-slate-900">
              <td className="px-3 py-2">
                <Link to={`/jobs/${j.job_id}`} className="font-medium text-sky-700 hover:underline dark:text-sky-400">
                  {j.task_name}
                </Link>
                <span className="ml-1 text-xs text-[var(--muted)]">{j.workspace}</span>
              </td>
              <td className="px-3 py-2">
                <StatusBadge status={j.status} />
              </td>
              <td className="px-3 py-2 whitespace-nowrap" title={formatTime(j.created_at)}>
                {timeAgo(j.created_at, now)}
              </td>
              <td className="px-3 py-2 whitespace-nowrap tabular-nums">{formatDuration(durationBetween(j.started_at, j.completed_at, now))}</td>
              {!compact && (
                <td className="px-3 py-2 text-[var(--muted)]">
                  {j.source_type}
                  {j.source_id ? `: ${j.source_id}` : ""}
                </td>
              )}
              {!compact && <td className="px-3 py-2 font-mono text-xs text-[var(--muted)]">{j.job_id.slice(0, 8)}</td>}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
