import { Trash2 } from "lucide-react";
import { ConfirmDialog } from "@/components/ConfirmDialog";
import { DataTable, Empty, Loading, narrowOnly, rowClass, wideOnly } from "@/components/common";
import { Button } from "@/components/ui/button";
import { Card, CardHeader, CardTitle } from "@/components/ui/card";
import type { Loaded } from "@/lib/hooks";
import type { ApiKey } from "@/lib/types";
import { formatTime, timeAgo } from "@/lib/utils";

/** A list of API keys (never the keys themselves: their prefix, name and
 * dates) with a Revoke button each, confirmed in a dialog. */
export function ApiKeyTable({ keys, onRevoke, now = Date.now() }: { keys: ApiKey[]; onRevoke: (prefix: string) => Promise<void>; now?: number }) {
  if (keys.length === 0) return <Empty>No API keys.</Empty>;
  return (
    <DataTable
      columns={[
        "Name",
        { label: "Prefix", from: "md" },
        { label: "Created", from: "2xl" },
        { label: "Expires", from: "2xl" },
        { label: "Last used", from: "2xl" },
        <span className="sr-only">Actions</span>,
      ]}
    >
      {keys.map((k) => {
        const expired = !!k.expires_at && Date.parse(k.expires_at) <= now;
        return (
          <tr key={k.prefix} className={rowClass} data-key={k.prefix}>
            <td className="px-3 py-2 font-medium wrap-anywhere">
              <span>{k.name}</span>
              <div className={`text-xs font-normal text-[var(--muted)] ${narrowOnly["2xl"]}`}>
                <span className={`font-mono ${narrowOnly.md}`}>{k.prefix}… · </span>
                <span className={expired ? "font-medium text-red-800 dark:text-red-300" : undefined}>
                  {k.expires_at ? `${expired ? "expired" : "expires"} ${formatTime(k.expires_at)}` : "no expiry"}
                </span>
                {" · "}
                {k.last_used_at ? `used ${timeAgo(k.last_used_at, now)}` : "never used"}
              </div>
            </td>
            <td className={`px-3 py-2 font-mono text-xs ${wideOnly.md}`}>{k.prefix}…</td>
            <td className={`px-3 py-2 whitespace-nowrap ${wideOnly["2xl"]}`}>{formatTime(k.created_at)}</td>
            <td className={`px-3 py-2 whitespace-nowrap ${wideOnly["2xl"]}`}>
              {k.expires_at ? (
                <span className={expired ? "font-medium text-red-800 dark:text-red-300" : undefined}>
                  {formatTime(k.expires_at)}
                  {expired ? " (expired)" : ""}
                </span>
              ) : (
                "never"
              )}
            </td>
            <td className={`px-3 py-2 whitespace-nowrap ${wideOnly["2xl"]}`} title={formatTime(k.last_used_at)}>
              {k.last_used_at ? timeAgo(k.last_used_at, now) : "never"}
            </td>
            <td className="px-3 py-2 text-right">
              <ConfirmDialog
                trigger={
                  <Button variant="outline" size="sm" aria-label={`Revoke ${k.name} (${k.prefix})`}>
                    <Trash2 className="h-4 w-4" aria-hidden /> Revoke
                  </Button>
                }
                title={<>Revoke “{k.name}”?</>}
                description={<>Scripts using the key {k.prefix}… are refused from now on. This cannot be undone.</>}
                keep="Keep it"
                confirm="Revoke key"
                busyLabel="Revoking…"
                onConfirm={() => onRevoke(k.prefix)}
              />
            </td>
          </tr>
        );
      })}
    </DataTable>
  );
}

/** A card of someone's API keys: title, then the keys (as loaded) with
 * Revoke, which calls revoke and loads the keys again. */
export function ApiKeysCard({ title, className, keys, revoke }: { title: string; className?: string; keys: Loaded<ApiKey[]>; revoke: (prefix: string) => Promise<unknown> }) {
  return (
    <Card className={className}>
      <CardHeader>
        <CardTitle>{title}</CardTitle>
      </CardHeader>
      <Loading load={keys}>
        {(k) => (
          <ApiKeyTable
            keys={k}
            onRevoke={async (p) => {
              await revoke(p);
              keys.reload();
            }}
          />
        )}
      </Loading>
    </Card>
  );
}
