import { Link } from "react-router";
import { AdminOnly } from "@/components/AdminOnly";
import { Empty, ErrorBox, PageHeader, Spinner } from "@/components/common";
import { Card } from "@/components/ui/card";
import { allUsers, api } from "@/lib/api";
import { useLoad, useTitle } from "@/lib/hooks";
import type { User } from "@/lib/types";

/** Group name → its members, from the users' groups. */
export function membersByGroup(groups: string[], users: User[]): Map<string, User[]> {
  const m = new Map<string, User[]>(groups.map((g) => [g, []]));
  for (const u of users) for (const g of u.groups ?? []) (m.get(g) ?? m.set(g, []).get(g)!).push(u);
  return new Map([...m.entries()].sort(([a], [b]) => a.localeCompare(b)));
}

function GroupList() {
  const data = useLoad(async () => membersByGroup(await api.groups(), await allUsers()), []);
  return (
    <>
      <PageHeader title="Groups" sub={data.data ? `${data.data.size} group${data.data.size === 1 ? "" : "s"} in use` : undefined} />
      <p className="mb-3 text-sm text-[var(--muted)]">
        A group exists while a user has it: give groups to users on their page (or through a single sign-on provider's groups claim). ACL rules in the server config name groups.
      </p>
      {data.error && <ErrorBox error={data.error} onRetry={data.reload} />}
      <Card>
        {!data.data && !data.error && <Spinner />}
        {data.data?.size === 0 && <Empty>No user has a group yet.</Empty>}
        {data.data && data.data.size > 0 && (
          <ul className="divide-y divide-[var(--border)]">
            {[...data.data.entries()].map(([g, us]) => (
              <li key={g} className="px-4 py-3" data-group={g}>
                <div className="flex items-baseline gap-2">
                  <h2 className="font-medium">{g}</h2>
                  <span className="text-xs text-[var(--muted)]">
                    {us.length} member{us.length === 1 ? "" : "s"}
                  </span>
                </div>
                <ul className="mt-1 flex flex-wrap gap-x-3 gap-y-1 text-sm">
                  {us.map((u) => (
                    <li key={u.user_id}>
                      <Link className="text-sky-800 hover:underline dark:text-sky-300" to={`/admin/users/${encodeURIComponent(u.user_id)}`}>
                        {u.email}
                      </Link>
                    </li>
                  ))}
                </ul>
              </li>
            ))}
          </ul>
        )}
      </Card>
    </>
  );
}

/** Asks the server nothing unless it has authentication: without it there
 * are no users (the routes do not exist, and each visit logged a 404). */
export default function Groups() {
  useTitle("Groups");
  return (
    <AdminOnly>
      <GroupList />
    </AdminOnly>
  );
}
