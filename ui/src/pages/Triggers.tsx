import { Link } from "react-router";
import { Empty, ErrorBox, PageHeader, Spinner } from "@/components/common";
import { Card } from "@/components/ui/card";
import { api } from "@/lib/api";
import { useLoad, useNow, useTitle } from "@/lib/hooks";
import { formatTime, timeAgo } from "@/lib/utils";

export default function Triggers() {
  useTitle("Triggers");
  const now = useNow(1000);
  const data = useLoad(
    async () => {
      const wss = await api.workspaces();
      const all = await Promise.all(wss.map(async (ws) => (await api.triggers(ws.name)).map((t) => ({ ...t, workspace: ws.name }))));
      return all.flat();
    },
    [],
    15_000,
  );
  return (
    <div>
      <PageHeader title="Triggers" />
      {data.error && <ErrorBox error={data.error} />}
      <Card>
        {!data.data && !data.error && <Spinner />}
        {data.data?.length === 0 && <Empty>No triggers are defined.</Empty>}
        {data.data && data.data.length > 0 && (
          <div className="overflow-x-auto">
            <table className="w-full text-sm">
              <thead className="text-left text-xs uppercase text-[var(--muted)]">
                <tr className="border-b border-[var(--border)]">
                  <th scope="col" className="px-3 py-2 font-medium">Trigger</th>
                  <th scope="col" className="px-3 py-2 font-medium">Type</th>
                  <th scope="col" className="px-3 py-2 font-medium">Task</th>
                  <th scope="col" className="px-3 py-2 font-medium">Schedule</th>
                  <th scope="col" className="px-3 py-2 font-medium">Next fire</th>
                </tr>
              </thead>
              <tbody>
                {data.data.map((t) => (
                  <tr key={`${t.workspace}/${t.name}`} className="border-b border-[var(--border)] last:border-0">
                    <td className="px-3 py-2">
                      <span className="font-medium">{t.name}</span>
                      <span className="ml-1 text-xs text-[var(--muted)]">{t.workspace}</span>
                      {t.enabled === false && <span className="ml-2 text-xs text-amber-700 dark:text-amber-400">disabled</span>}
                    </td>
                    <td className="px-3 py-2">{t.type}</td>
                    <td className="px-3 py-2">
                      <Link className="text-sky-700 hover:underline dark:text-sky-400" to={`/tasks/${encodeURIComponent(t.workspace!)}/${encodeURIComponent(t.task)}`}>
                        {t.task}
                      </Link>
                    </td>
                    <td className="px-3 py-2 font-mono text-xs">{t.cron ?? (t.type === "webhook" ? `/hooks/${t.name}` : "—")}</td>
                    <td className="px-3 py-2 whitespace-nowrap" title={formatTime(t.next_fire_at)}>
                      {t.next_fire_at ? timeAgo(t.next_fire_at, now) : "—"}
                    </td>
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
