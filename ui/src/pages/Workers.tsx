import { Empty, ErrorBox, PageHeader, Spinner } from "@/components/common";
import { StatusBadge } from "@/components/status";
import { Card } from "@/components/ui/card";
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
      {w.error && <ErrorBox error={w.error} />}
      <Card>
        {!w.data && !w.error && <Spinner />}
        {w.data?.items.length === 0 && <Empty>No worker has registered. Start one with `stroem worker`.</Empty>}
        {w.data && w.data.items.length > 0 && (
          <div className="overflow-x-auto">
            <table className="w-full text-sm">
              <thead className="text-left text-xs uppercase text-[var(--muted)]">
                <tr className="border-b border-[var(--border)]">
                  <th scope="col" className="px-3 py-2 font-medium">Name</th>
                  <th scope="col" className="px-3 py-2 font-medium">Status</th>
                  <th scope="col" className="px-3 py-2 font-medium">Slots</th>
                  <th scope="col" className="px-3 py-2 font-medium">Capabilities</th>
                  <th scope="col" className="px-3 py-2 font-medium">Tags</th>
                  <th scope="col" className="px-3 py-2 font-medium">Last heartbeat</th>
                  <th scope="col" className="px-3 py-2 font-medium">Registered</th>
                </tr>
              </thead>
              <tbody>
                {w.data.items.map((x) => (
                  <tr key={x.worker_id} className="border-b border-[var(--border)] last:border-0">
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
              </tbody>
            </table>
          </div>
        )}
      </Card>
    </div>
  );
}
