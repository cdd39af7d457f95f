import { Link } from "react-router";
import { DataTable, narrowOnly, rowClass, wideOnly } from "@/components/common";
import { useNow } from "@/lib/hooks";
import type { Job } from "@/lib/types";
import { durationBetween, formatDuration, formatTime, sourceLabel, timeAgo } from "@/lib/utils";
import { StatusBadge } from "./status";

/** Jobs, newest first as given. Narrow (a phone), a row is the task and
 * its status, with when it was created and how long it ran under the
 * task's name; Source and Job show from 672 px of table. */
export function JobTable({ jobs, compact }: { jobs: Job[]; compact?: boolean }) {
  const now = useNow(1000);
  return (
    <DataTable
      columns={["Task", "Status", { label: "Created", from: "md" }, { label: "Duration", from: "md" }, !compact && { label: "Source", from: "2xl" }, !compact && { label: "Job", from: "2xl" }]}
      headClassName="tracking-wide"
    >
      {jobs.map((j) => {
        const duration = formatDuration(durationBetween(j.started_at, j.completed_at, now));
        return (
          <tr key={j.job_id} className={`${rowClass} hover:bg-slate-50 dark:hover:bg-slate-900`}>
            <td className="px-3 py-2 wrap-anywhere">
              <Link to={`/jobs/${j.job_id}`} className="font-medium text-sky-700 hover:underline dark:text-sky-400">
                {j.task_name}
              </Link>
              <span className="ml-1 text-xs text-[var(--muted)]">{j.workspace}</span>
              <div className={`text-xs text-[var(--muted)] tabular-nums ${narrowOnly.md}`} title={formatTime(j.created_at)}>
                {timeAgo(j.created_at, now)} · {duration}
              </div>
            </td>
            <td className="px-3 py-2">
              <StatusBadge status={j.status} />
            </td>
            <td className={`px-3 py-2 whitespace-nowrap ${wideOnly.md}`} title={formatTime(j.created_at)}>
              {timeAgo(j.created_at, now)}
            </td>
            <td className={`px-3 py-2 whitespace-nowrap tabular-nums ${wideOnly.md}`}>{duration}</td>
            {!compact && (
              <td className={`px-3 py-2 text-[var(--muted)] ${wideOnly["2xl"]}`}>
                {sourceLabel(j)}
              </td>
            )}
            {!compact && <td className={`px-3 py-2 font-mono text-xs text-[var(--muted)] ${wideOnly["2xl"]}`}>{j.job_id.slice(0, 8)}</td>}
          </tr>
        );
      })}
    </DataTable>
  );
}
