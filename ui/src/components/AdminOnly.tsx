import type { ReactNode } from "react";
import { Card } from "@/components/ui/card";
import { Empty, PageHeader } from "@/components/common";
import { useServerConfig } from "@/lib/auth-context";
import { useMe } from "@/lib/me";

/** Wraps the administration pages: without authentication there are no
 * users; a signed-in non-admin is told so (the API would answer 403). */
export function AdminOnly({ children }: { children: ReactNode }) {
  const cfg = useServerConfig();
  const me = useMe();
  if (!cfg.auth_required) {
    return (
      <div>
        <PageHeader title="Administration" />
        <Card>
          <Empty>This server has no authentication (no auth: section in its config): there are no users, groups or API keys to manage.</Empty>
        </Card>
      </div>
    );
  }
  if (me && !me.is_admin) {
    return (
      <div>
        <PageHeader title="Administration" />
        <Card>
          <Empty>Only admins manage users, groups and API keys. Your own keys are under API keys.</Empty>
        </Card>
      </div>
    );
  }
  return <div>{children}</div>;
}
