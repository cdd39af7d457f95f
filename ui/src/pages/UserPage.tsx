import { useState } from "react";
import { Link, useParams } from "react-router";
import { AdminOnly } from "@/components/AdminOnly";
import { ApiKeysCard } from "@/components/ApiKeyTable";
import { ErrorBox, PageHeader, Spinner } from "@/components/common";
import { GroupsEditor } from "@/components/GroupsEditor";
import { Card, CardContent, CardHeader, CardTitle } from "@/components/ui/card";
import { Switch } from "@/components/ui/switch";
import { api } from "@/lib/api";
import { useLoad, useTitle } from "@/lib/hooks";
import { useMe } from "@/lib/me";
import { formatTime } from "@/lib/utils";

function UserDetail() {
  const { id = "" } = useParams();
  const me = useMe();
  const user = useLoad(() => api.user(id), [id]);
  const known = useLoad(() => api.groups(), []);
  const keys = useLoad(() => api.userKeys(id), [id]);
  const [adminErr, setAdminErr] = useState<Error>();
  const [busy, setBusy] = useState(false);
  const u = user.data;
  useTitle(u ? u.email : "User");
  const self = !!me && me.user_id === id;
  return (
    <>
      <PageHeader
        title={u?.email ?? "User"}
        sub={
          <>
            <Link className="hover:underline" to="/admin/users">
              Users
            </Link>
            {u && (
              <>
                {" "}
                · {u.name ? `${u.name} · ` : ""}created {formatTime(u.created_at)} · last login {u.last_login_at ? formatTime(u.last_login_at) : "never"} · signs in with {u.auth_methods?.join(", ") || "—"}
              </>
            )}
          </>
        }
      />
      {user.error && <ErrorBox error={user.error} onRetry={user.reload} />}
      {!u && !user.error && <Spinner />}
      {u && (
        <div className="grid grid-cols-1 gap-4 lg:grid-cols-2">
          <Card>
            <CardHeader>
              <CardTitle>Role</CardTitle>
            </CardHeader>
            <CardContent className="space-y-2">
              <div className="flex items-center gap-3">
                <Switch
                  id="is-admin"
                  checked={!!u.is_admin}
                  disabled={busy || (self && !!u.is_admin)}
                  onCheckedChange={async (v) => {
                    setBusy(true);
                    setAdminErr(undefined);
                    try {
                      await api.setAdmin(id, v);
                      user.reload();
                    } catch (e) {
                      setAdminErr(e as Error);
                    } finally {
                      setBusy(false);
                    }
                  }}
                />
                <label htmlFor="is-admin" className="text-sm font-medium">
                  Admin
                </label>
              </div>
              <p className="text-xs text-[var(--muted)]">
                Admins run every task and manage users. {self ? "You cannot revoke your own admin status." : "Changes reach the user's sessions at their next token refresh (at most 15 minutes); API keys at once."}
              </p>
              {adminErr && <ErrorBox error={adminErr} />}
            </CardContent>
          </Card>
          <Card>
            <CardHeader>
              <CardTitle>Groups</CardTitle>
            </CardHeader>
            <CardContent>
              <GroupsEditor
                groups={u.groups ?? []}
                known={known.data ?? []}
                onSave={async (g) => {
                  await api.setGroups(id, g);
                  user.reload();
                  known.reload();
                }}
              />
              <p className="mt-2 text-xs text-[var(--muted)]">Groups are what ACL rules name. A single sign-on provider with a groups claim replaces them at the user's next sign-in.</p>
            </CardContent>
          </Card>
          <ApiKeysCard className="lg:col-span-2" title="API keys" keys={keys} revoke={(p) => api.revokeUserKey(id, p)} />
        </div>
      )}
    </>
  );
}

/** Asks the server nothing unless it has authentication: without it there
 * are no users (the routes do not exist, and each visit logged a 404). */
export default function UserPage() {
  return (
    <AdminOnly>
      <UserDetail />
    </AdminOnly>
  );
}
