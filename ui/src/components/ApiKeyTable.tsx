import { Trash2 } from "lucide-react";
import { useState } from "react";
import { Empty, ErrorBox } from "@/components/common";
import { Button } from "@/components/ui/button";
import { Dialog, DialogClose, DialogContent, DialogDescription, DialogTitle, DialogTrigger } from "@/components/ui/dialog";
import type { ApiKey } from "@/lib/types";
import { formatTime, timeAgo } from "@/lib/utils";

/** A list of API keys (never the keys themselves: their prefix, name and
 * dates) with a Revoke button each, confirmed in a dialog. */
export function ApiKeyTable({ keys, onRevoke, now = Date.now() }: { keys: ApiKey[]; onRevoke: (prefix: string) => Promise<void>; now?: number }) {
  if (keys.length === 0) return <Empty>No API keys.</Empty>;
  return (
    <div className="overflow-x-auto">
      <table className="w-full text-sm">
        <thead className="text-left text-xs uppercase text-[var(--muted)]">
          <tr className="border-b border-[var(--border)]">
            <th scope="col" className="px-3 py-2 font-medium">Name</th>
            <th scope="col" className="px-3 py-2 font-medium">Prefix</th>
            <th scope="col" className="px-3 py-2 font-medium">Created</th>
            <th scope="col" className="px-3 py-2 font-medium">Expires</th>
            <th scope="col" className="px-3 py-2 font-medium">Last used</th>
            <th scope="col" className="px-3 py-2 font-medium"><span className="sr-only">Actions</span></th>
          </tr>
        </thead>
        <tbody>
          {keys.map((k) => {
            const expired = !!k.expires_at && Date.parse(k.expires_at) <= now;
            return (
              <tr key={k.prefix} className="border-b border-[var(--border)] last:border-0" data-key={k.prefix}>
                <td className="px-3 py-2 font-medium">{k.name}</td>
                <td className="px-3 py-2 font-mono text-xs">{k.prefix}…</td>
                <td className="px-3 py-2 whitespace-nowrap">{formatTime(k.created_at)}</td>
                <td className="px-3 py-2 whitespace-nowrap">
                  {k.expires_at ? (
                    <span className={expired ? "font-medium text-red-800 dark:text-red-300" : undefined}>
                      {formatTime(k.expires_at)}
                      {expired ? " (expired)" : ""}
                    </span>
                  ) : (
                    "never"
                  )}
                </td>
                <td className="px-3 py-2 whitespace-nowrap" title={formatTime(k.last_used_at)}>
                  {k.last_used_at ? timeAgo(k.last_used_at, now) : "never"}
                </td>
                <td className="px-3 py-2 text-right">
                  <RevokeButton k={k} onRevoke={onRevoke} />
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function RevokeButton({ k, onRevoke }: { k: ApiKey; onRevoke: (prefix: string) => Promise<void> }) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error>();
  return (
    <Dialog open={open} onOpenChange={(o) => (setOpen(o), setError(undefined))}>
      <DialogTrigger asChild>
        <Button variant="outline" size="sm" aria-label={`Revoke ${k.name} (${k.prefix})`}>
          <Trash2 className="h-4 w-4" aria-hidden /> Revoke
        </Button>
      </DialogTrigger>
      <DialogContent>
        <DialogTitle>Revoke “{k.name}”?</DialogTitle>
        <DialogDescription>Scripts using the key {k.prefix}… are refused from now on. This cannot be undone.</DialogDescription>
        {error && (
          <div className="mt-3">
            <ErrorBox error={error} />
          </div>
        )}
        <div className="mt-5 flex justify-end gap-2">
          <DialogClose asChild>
            <Button variant="outline">Keep it</Button>
          </DialogClose>
          <Button
            variant="destructive"
            disabled={busy}
            onClick={async () => {
              setBusy(true);
              try {
                await onRevoke(k.prefix);
                setOpen(false);
              } catch (e) {
                setError(e as Error);
              } finally {
                setBusy(false);
              }
            }}
          >
            {busy ? "Revoking…" : "Revoke key"}
          </Button>
        </div>
      </DialogContent>
    </Dialog>
  );
}
