import { Folder, Search, Zap } from "lucide-react";
import { Link, useSearchParams } from "react-router";
import { Empty, ErrorBox, PageHeader, Spinner } from "@/components/common";
import { Card, CardHeader, CardTitle } from "@/components/ui/card";
import { Input } from "@/components/ui/input";
import { api, ApiError } from "@/lib/api";
import { useLoad, useTitle } from "@/lib/hooks";
import type { Task } from "@/lib/types";

/** Groups tasks by folder ("" for none), folders sorted, tasks by name. */
export function groupByFolder(tasks: Task[]): [string, Task[]][] {
  const m = new Map<string, Task[]>();
  for (const t of tasks) {
    const f = t.folder ?? "";
    if (!m.has(f)) m.set(f, []);
    m.get(f)!.push(t);
  }
  return [...m.entries()].sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a.localeCompare(b)));
}

export function matches(t: Task, q: string): boolean {
  if (!q) return true;
  const s = q.toLowerCase();
  return [t.name, t.description ?? "", t.folder ?? ""].some((v) => v.toLowerCase().includes(s));
}

export default function Tasks() {
  useTitle("Tasks");
  const [params, setParams] = useSearchParams();
  const q = params.get("q") ?? "";
  const data = useLoad(async () => {
    const wss = await api.workspaces();
    return Promise.all(wss.map(async (ws) => ({ ws, tasks: await api.tasks(ws.name) })));
  }, []);

  return (
    <div>
      <PageHeader title="Tasks">
        <div className="relative w-72 max-w-full">
          <Search className="pointer-events-none absolute left-2.5 top-2.5 h-4 w-4 text-[var(--muted)]" aria-hidden />
          <Input
            type="search"
            aria-label="Search tasks"
            placeholder="Search tasks…"
            className="pl-8"
            value={q}
            onChange={(e) => setParams(e.target.value ? { q: e.target.value } : {}, { replace: true })}
          />
        </div>
      </PageHeader>
      {data.error && <ErrorBox error={data.error} onRetry={data.reload} />}
      {!data.data && !data.error && <Spinner />}
      <div className="space-y-4">
        {data.data?.map(({ ws, tasks }) => {
          const shown = tasks.filter((t) => matches(t, q));
          return (
            <Card key={ws.name}>
              <CardHeader>
                <CardTitle>Workspace {ws.name}</CardTitle>
                <span className="text-xs text-[var(--muted)]">
                  {tasks.length} tasks · revision <span className="font-mono">{ws.revision.slice(0, 8)}</span>
                </span>
              </CardHeader>
              {ws.errors.length > 0 && (
                <div className="border-b border-[var(--border)] p-3">
                  <ErrorBox error={new ApiError(0, `${ws.errors.length} load problem(s)`, ws.errors)} />
                </div>
              )}
              {shown.length === 0 && <Empty>{q ? `No task matches “${q}”.` : "This workspace has no tasks."}</Empty>}
              {groupByFolder(shown).map(([folder, ts]) => (
                <div key={folder}>
                  {folder && (
                    <div className="flex items-center gap-1.5 px-4 pt-3 text-xs font-medium text-[var(--muted)]">
                      <Folder className="h-3.5 w-3.5" aria-hidden /> {folder}
                    </div>
                  )}
                  <ul className="divide-y divide-[var(--border)]">
                    {ts.map((t) => (
                      <li key={t.name}>
                        <Link
                          to={`/tasks/${encodeURIComponent(ws.name)}/${encodeURIComponent(t.name)}`}
                          className="flex flex-wrap items-baseline gap-x-3 gap-y-1 px-4 py-2.5 hover:bg-slate-50 dark:hover:bg-slate-900"
                        >
                          <span className="font-medium text-sky-700 dark:text-sky-400">{t.name}</span>
                          {t.has_triggers && (
                            <span className="inline-flex items-center gap-0.5 text-xs text-[var(--muted)]" title="Has triggers">
                              <Zap className="h-3 w-3" aria-hidden /> triggers
                            </span>
                          )}
                          <span className="text-sm text-[var(--muted)]">{t.description}</span>
                        </Link>
                      </li>
                    ))}
                  </ul>
                </div>
              ))}
            </Card>
          );
        })}
      </div>
    </div>
  );
}
