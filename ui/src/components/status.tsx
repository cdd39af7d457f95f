import { cn } from "@/lib/utils";

const styles: Record<string, string> = {
  pending: "bg-slate-100 text-slate-700 ring-slate-300 dark:bg-slate-800 dark:text-slate-300 dark:ring-slate-600",
  ready: "bg-slate-100 text-slate-700 ring-slate-300 dark:bg-slate-800 dark:text-slate-300 dark:ring-slate-600",
  running: "bg-sky-50 text-sky-800 ring-sky-300 dark:bg-sky-950 dark:text-sky-300 dark:ring-sky-700",
  completed: "bg-emerald-50 text-emerald-800 ring-emerald-300 dark:bg-emerald-950 dark:text-emerald-300 dark:ring-emerald-700",
  failed: "bg-red-50 text-red-800 ring-red-300 dark:bg-red-950 dark:text-red-300 dark:ring-red-700",
  lost: "bg-red-50 text-red-800 ring-red-300 dark:bg-red-950 dark:text-red-300 dark:ring-red-700",
  cancelled: "bg-amber-50 text-amber-800 ring-amber-300 dark:bg-amber-950 dark:text-amber-300 dark:ring-amber-700",
  suspended: "bg-violet-50 text-violet-900 ring-violet-300 dark:bg-violet-950 dark:text-violet-200 dark:ring-violet-700",
  skipped: "bg-slate-50 text-slate-600 ring-slate-200 dark:bg-slate-900 dark:text-slate-400 dark:ring-slate-700",
  active: "bg-emerald-50 text-emerald-800 ring-emerald-300 dark:bg-emerald-950 dark:text-emerald-300 dark:ring-emerald-700",
  stale: "bg-amber-50 text-amber-800 ring-amber-300 dark:bg-amber-950 dark:text-amber-300 dark:ring-amber-700",
};

/** Status as text plus colour (never colour alone). */
export function StatusBadge({ status, className, label }: { status: string; className?: string; label?: string }) {
  return (
    <span
      className={cn(
        "inline-flex items-center gap-1 rounded-full px-2 py-0.5 text-xs font-medium ring-1 ring-inset",
        styles[status] ?? styles.pending,
        className,
      )}
      data-status={status}
    >
      {status === "running" && <span className="h-1.5 w-1.5 animate-pulse rounded-full bg-current" aria-hidden />}
      {label ?? (status === "suspended" ? "waiting" : status)}
    </span>
  );
}

/** Colours of statuses in the DAG and charts (fill, stroke). */
export const statusColor: Record<string, { fill: string; stroke: string }> = {
  pending: { fill: "#e2e8f0", stroke: "#64748b" },
  ready: { fill: "#e2e8f0", stroke: "#64748b" },
  running: { fill: "#bae6fd", stroke: "#0284c7" },
  completed: { fill: "#a7f3d0", stroke: "#059669" },
  failed: { fill: "#fecaca", stroke: "#dc2626" },
  cancelled: { fill: "#fde68a", stroke: "#d97706" },
  skipped: { fill: "#f1f5f9", stroke: "#94a3b8" },
  suspended: { fill: "#ddd6fe", stroke: "#7c3aed" },
};
