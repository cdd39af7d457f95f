import { DataTable, ListCard, PageHeader, rowClass } from "@/components/common";
import { StatusBadge } from "@/components/status";
import { api } from "@/lib/api";
import { useLoad, useNow, useTitle } from "@/lib/hooks";
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
          <DataTable columns={["Name", "Status", "Slots", "Capabilities", "Tags", "Last heartbeat", "Registered"]}>
            {d.items.map((x) => (
              <tr key={x.worker_id} className={rowClass}>
                <td className="px-3 py-2">
                  <div className="font-medium">{x.name}</div>
                  <div className="font-mono text-xs text-[var(--muted)]">{x.worker_id.slice(0, 8)}</div>
                </td>
                <td className="px-3 py-2">
                  <StatusBadge status={x.status} />
                </td>
                <td className="px-3 py-2 tabular-nums">{x.slots ?? x.max_concurrent ?? "—"}</td>
                <td className="px-3 py-2">{x.capabilities.join(", ") || "—"}</td>
                <td className="px-3 py-2">{x.tags.join(", ") || "—"}</td>
                <td className="px-3 py-2 whitespace-nowrap" title={formatTime(x.last_heartbeat_at)}>
                  {timeAgo(x.last_heartbeat_at, now)}
                </td>
                <td className="px-3 py-2 whitespace-nowrap">{formatTime(x.registered_at)}</td>
              </tr>
            ))}
          </DataTable>
        )}
      </ListCard>
    </div>
  );
}
