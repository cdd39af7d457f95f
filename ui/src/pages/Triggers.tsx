import { Link } from "react-router";
import { DataTable, ListCard, narrowOnly, PageHeader, rowClass, wideOnly } from "@/components/common";
import { api } from "@/lib/api";
import { useLoad, useNow, useTitle } from "@/lib/hooks";
import type { Trigger } from "@/lib/types";
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
      <ListCard load={data} items={(d) => d} empty="No triggers are defined.">
        {(triggers) => (
          <DataTable columns={["Trigger", { label: "Type", from: "lg" }, "Task", { label: "Schedule", from: "lg" }, "Next fire"]}>
            {triggers.map((t) => (
              <tr key={`${t.workspace}/${t.name}`} className={rowClass}>
                <td className="px-3 py-2 wrap-anywhere">
                  <span className="font-medium">{t.name}</span>
                  <span className="ml-1 text-xs text-[var(--muted)]">{t.workspace}</span>
                  {t.enabled === false && <span className="ml-2 text-xs text-amber-700 dark:text-amber-400">disabled</span>}
                  <div className={`text-xs text-[var(--muted)] ${narrowOnly.lg}`}>
                    {t.type} <span className="font-mono">{schedule(t)}</span>
                  </div>
                </td>
                <td className={`px-3 py-2 ${wideOnly.lg}`}>{t.type}</td>
                <td className="px-3 py-2 wrap-anywhere">
                  <Link className="text-sky-700 hover:underline dark:text-sky-400" to={`/tasks/${encodeURIComponent(t.workspace!)}/${encodeURIComponent(t.task)}`}>
                    {t.task}
                  </Link>
                </td>
                <td className={`px-3 py-2 font-mono text-xs ${wideOnly.lg}`}>{schedule(t)}</td>
                <td className="px-3 py-2 whitespace-nowrap" title={formatTime(t.next_fire_at)}>
                  {t.next_fire_at ? timeAgo(t.next_fire_at, now) : "—"}
                </td>
              </tr>
            ))}
          </DataTable>
        )}
      </ListCard>
    </div>
  );
}

/** What fires a trigger: its cron, or a webhook's path. */
function schedule(t: Pick<Trigger, "name" | "type" | "cron">): string {
  return t.cron ?? (t.type === "webhook" ? `/hooks/${t.name}` : "—");
}
