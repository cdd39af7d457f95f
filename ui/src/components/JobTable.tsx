import { Link } from "react-router";
import { DataTable, rowClass } from "@/components/common";
import { useNow } from "@/lib/hooks";
import type { Job } from "@/lib/types";
import { durationBetween, formatDuration, formatTime, timeAgo } from "@/lib/utils";
import { StatusBadge } from "./status";

export function JobTable({ jobs, compact }: { jobs: Job[]; compact?: boolean }) {
  const now = useNow(1000);
  return (
    <DataTable columns={["Task", "Status", "Created", "Duration", !compact && "Source", !compact && "Job"]} headClassName="tracking-wide">
      {jobs.map((j) => (
        <tr key={j.job_id} className={`${rowClass} hover:bg-slate-50 dark:hover:bg-slate-900`}>
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
    </DataTable>
  );
}
