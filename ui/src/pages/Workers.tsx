import { DataTable, ListCard, narrowOnly, PageHeader, rowClass, wideOnly } from "@/components/common";
import { StatusBadge } from "@/components/status";
import { api } from "@/lib/api";
import { useLoad, useNow, useTitle } from "@/lib/hooks";
import type { Worker } from "@/lib/types";
import { formatTime, timeAgo } from "@/lib/utils";

export default function Workers() {
  useTitle("Workers");
  const now = useNow(1000);
  const w = useLoad(() => api.workers(), [], 5000);
  return (
    <div>
      <PageHeader title="Workers" sub={w.data ? `${w.data.items.filter((x) => x.status === "active").length} of ${w.data.total} online` : undefined} />
      <ListCard load={w} items={(d) => d.items} empty="No worker has registered. Start one with `stroem worker`.">
        {(d) => (
          <DataTable
            columns={[
              "Name",
              "Status",
              "Slots",
              { label: "Capabilities", from: "2xl" },
              { label: "Tags", from: "2xl" },
              { label: "Last heartbeat", from: "md" },
              { label: "Registered", from: "2xl" },
            ]}
          >
            {d.items.map((x) => (
              <tr key={x.worker_id} className={rowClass}>
                <td className="px-3 py-2 wrap-anywhere">
                  <div className="font-medium">{x.name}</div>
                  <div className="font-mono text-xs text-[var(--muted)]">{x.worker_id.slice(0, 8)}</div>
                  <div className={`text-xs text-[var(--muted)] ${narrowOnly["2xl"]}`}>
                    {[...x.capabilities, ...x.tags.map((t) => `#${t}`), ...(x.exclusive && x.tags.length ? ["exclusive"] : [])].join(" · ")}
                    <span className={narrowOnly.md} title={formatTime(x.last_heartbeat_at)}>
                      {" "}
                      · seen {timeAgo(x.last_heartbeat_at, now)}
                    </span>
                  </div>
                </td>
                <td className="px-3 py-2">
                  <StatusBadge status={x.status} />
                </td>
                <td className="px-3 py-2 tabular-nums">{slots(x.max_concurrent)}</td>
                <td className={`px-3 py-2 ${wideOnly["2xl"]}`}>{x.capabilities.join(", ") || "—"}</td>
                <td className={`px-3 py-2 ${wideOnly["2xl"]}`}>{tagsText(x)}</td>
                <td className={`px-3 py-2 whitespace-nowrap ${wideOnly.md}`} title={formatTime(x.last_heartbeat_at)}>
                  {timeAgo(x.last_heartbeat_at, now)}
                </td>
                <td className={`px-3 py-2 whitespace-nowrap ${wideOnly["2xl"]}`}>{formatTime(x.registered_at)}</td>
              </tr>
            ))}
          </DataTable>
        )}
      </ListCard>
    </div>
  );
}

/** A worker's tags, and whether it is reserved for steps that require them
 * all (exclusive; with no tags that changes nothing, so it is not shown). */
export function tagsText(x: Worker): string {
  if (!x.tags.length) return "—";
  return x.tags.join(", ") + (x.exclusive ? " (exclusive)" : "");
}

/** A worker's slots as GET /api/workers gives them: max_concurrent, absent
 * for a worker that did not say it when registering. */
export function slots(maxConcurrent: number | undefined): string {
  return maxConcurrent && maxConcurrent > 0 ? String(maxConcurrent) : "—";
}
