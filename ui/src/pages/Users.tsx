import { ChevronLeft, ChevronRight } from "lucide-react";
import { Link, useSearchParams } from "react-router";
import { DataTable, Empty, ListCard, narrowOnly, PageHeader, rowClass, wideOnly } from "@/components/common";
import { AdminOnly } from "@/components/AdminOnly";
import { Button } from "@/components/ui/button";
import { api } from "@/lib/api";
import { useLoad, useNow, useTitle } from "@/lib/hooks";
import type { User } from "@/lib/types";
import { formatTime, timeAgo } from "@/lib/utils";

const PAGE = 20;

export function UserTable({ users, now = Date.now() }: { users: User[]; now?: number }) {
  if (users.length === 0) return <Empty>No users.</Empty>;
  return (
    <DataTable columns={["User", "Role", { label: "Groups", from: "2xl" }, { label: "Sign-in", from: "2xl" }, "Last login", { label: "Created", from: "2xl" }]}>
      {users.map((u) => (
        <tr key={u.user_id} className={rowClass} data-user={u.email}>
          <td className="px-3 py-2 wrap-anywhere">
            <Link className="font-medium text-sky-800 hover:underline dark:text-sky-300" to={`/admin/users/${encodeURIComponent(u.user_id)}`}>
              {u.email}
            </Link>
            {u.name && <div className="text-xs text-[var(--muted)]">{u.name}</div>}
            <div className={`text-xs text-[var(--muted)] ${narrowOnly["2xl"]}`}>
              {[u.groups?.length && `groups ${u.groups.join(", ")}`, u.auth_methods?.length && `sign-in ${u.auth_methods.join(", ")}`].filter(Boolean).join(" · ")}
            </div>
          </td>
          <td className="px-3 py-2">{u.is_admin ? <span className="rounded bg-violet-100 px-1.5 py-0.5 text-xs font-medium text-violet-900 dark:bg-violet-950 dark:text-violet-200">admin</span> : "user"}</td>
          <td className={`px-3 py-2 ${wideOnly["2xl"]}`}>{u.groups?.length ? u.groups.join(", ") : <span className="text-[var(--muted)]">—</span>}</td>
          <td className={`px-3 py-2 ${wideOnly["2xl"]}`}>{u.auth_methods?.join(", ") || "—"}</td>
          <td className="px-3 py-2 whitespace-nowrap" title={formatTime(u.last_login_at)}>
            {u.last_login_at ? timeAgo(u.last_login_at, now) : "never"}
          </td>
          <td className={`px-3 py-2 whitespace-nowrap ${wideOnly["2xl"]}`}>{formatTime(u.created_at)}</td>
        </tr>
      ))}
    </DataTable>
  );
}

function UserList() {
  const now = useNow(10_000);
  const [params, setParams] = useSearchParams();
  const offset = Math.max(0, Number(params.get("offset")) || 0);
  const users = useLoad(() => api.users(PAGE, offset), [offset]);
  const total = users.data?.total ?? 0;
  const page = Math.floor(offset / PAGE) + 1;
  const pages = Math.max(1, Math.ceil(total / PAGE));
  const go = (o: number) => setParams(o > 0 ? { offset: String(o) } : {});
  return (
    <>
      <PageHeader title="Users" sub={users.data ? `${total} user${total === 1 ? "" : "s"}` : undefined}>
        <Button asChild variant="outline" size="sm">
          <Link to="/admin/groups">Groups</Link>
        </Button>
      </PageHeader>
      <p className="mb-3 text-sm text-[var(--muted)]">
        Users are created by their first sign-in with a single sign-on provider, or as the server's <code>initial_user</code>. Open a user to change their admin flag, groups and API keys.
      </p>
      <ListCard load={users}>{(d) => <UserTable users={d.items} now={now} />}</ListCard>
      {pages > 1 && (
        <nav className="mt-3 flex items-center justify-end gap-2 text-sm" aria-label="Pages">
          <Button variant="outline" size="sm" disabled={offset === 0} onClick={() => go(Math.max(0, offset - PAGE))} aria-label="Previous page">
            <ChevronLeft className="h-4 w-4" aria-hidden />
          </Button>
          <span>
            page {page} of {pages}
          </span>
          <Button variant="outline" size="sm" disabled={offset + PAGE >= total} onClick={() => go(offset + PAGE)} aria-label="Next page">
            <ChevronRight className="h-4 w-4" aria-hidden />
          </Button>
        </nav>
      )}
    </>
  );
}

/** Asks the server nothing unless it has authentication: without it there
 * are no users (the routes do not exist, and each visit logged a 404). */
export default function Users() {
  useTitle("Users");
  return (
    <AdminOnly>
      <UserList />
    </AdminOnly>
  );
}
