import { Copy, KeyRound } from "lucide-react";
import { useRef, useState, type FormEvent } from "react";
import { ApiKeysCard } from "@/components/ApiKeyTable";
import { Empty, ErrorBox, PageHeader } from "@/components/common";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardHeader, CardTitle } from "@/components/ui/card";
import { Input, Label } from "@/components/ui/input";
import { api } from "@/lib/api";
import { useServerConfig } from "@/lib/auth-context";
import { useLoad, useTitle } from "@/lib/hooks";
import type { ApiKeyCreated } from "@/lib/types";

/** "My API keys": every signed-in user lists, creates and revokes their
 * own keys (POST /api/auth/api-keys needs a session, which the UI has). */
export default function ApiKeys() {
  useTitle("API keys");
  const cfg = useServerConfig();
  const keys = useLoad(() => (cfg.auth_required ? api.myKeys() : Promise.resolve([])), [cfg.auth_required]);
  const [created, setCreated] = useState<ApiKeyCreated>();
  if (!cfg.auth_required) {
    return (
      <div>
        <PageHeader title="API keys" />
        <Card>
          <Empty>This server has no authentication (no auth: section), so there are no users and no API keys: every client may call the API.</Empty>
        </Card>
      </div>
    );
  }
  return (
    <div className="space-y-4">
      <PageHeader title="API keys" sub="Keys act as you (your admin flag and groups apply) for scripts and CI: Authorization: Bearer strm_…" />
      <CreateKey
        onCreated={(k) => {
          setCreated(k);
          keys.reload();
        }}
      />
      {created && <NewKey k={created} onDone={() => setCreated(undefined)} />}
      <ApiKeysCard title="Your keys" keys={keys} revoke={(p) => api.revokeKey(p)} />
    </div>
  );
}

export function CreateKey({ onCreated }: { onCreated: (k: ApiKeyCreated) => void }) {
  const [name, setName] = useState("");
  const [days, setDays] = useState("");
  const [error, setError] = useState<Error>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(undefined);
    if (!name.trim()) return setError(new Error("Give the key a name (what uses it)."));
    const d = days.trim() === "" ? undefined : Number(days);
    if (d !== undefined && (!Number.isInteger(d) || d < 1)) return setError(new Error("Expiry: a whole number of days, 1 or more (empty: never)."));
    setBusy(true);
    try {
      onCreated(await api.createKey(name.trim(), d));
      setName("");
      setDays("");
    } catch (err) {
      setError(err as Error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Card>
      <CardHeader>
        <CardTitle>New key</CardTitle>
      </CardHeader>
      <CardContent>
        <form className="flex flex-wrap items-end gap-3" onSubmit={submit} noValidate>
          <div className="grid min-w-48 flex-1 gap-1">
            <Label htmlFor="key-name">Name</Label>
            <Input id="key-name" value={name} onChange={(e) => setName(e.target.value)} placeholder="ci-deploy" required />
          </div>
          <div className="grid w-40 gap-1">
            <Label htmlFor="key-days">Expires in (days)</Label>
            <Input id="key-days" type="number" min={1} step={1} value={days} onChange={(e) => setDays(e.target.value)} placeholder="never" />
          </div>
          <Button type="submit" disabled={busy}>
            <KeyRound className="h-4 w-4" aria-hidden /> {busy ? "Creating…" : "Create key"}
          </Button>
        </form>
        {error && (
          <div className="mt-3">
            <ErrorBox error={error} />
          </div>
        )}
      </CardContent>
    </Card>
  );
}

function NewKey({ k, onDone }: { k: ApiKeyCreated; onDone: () => void }) {
  const [copied, setCopied] = useState<boolean>();
  const code = useRef<HTMLElement>(null);
  return (
    <div role="status" className="rounded-md border border-emerald-300 bg-emerald-50 p-3 text-sm text-emerald-900 dark:border-emerald-800 dark:bg-emerald-950 dark:text-emerald-200">
      <p className="font-medium">Key “{k.name}” created. Copy it now: it is not shown again.</p>
      <div className="mt-2 flex flex-wrap items-center gap-2">
        <code ref={code} className="break-all rounded bg-white px-2 py-1 font-mono text-xs text-slate-900 dark:bg-slate-900 dark:text-slate-100" data-testid="new-key">
          {k.key}
        </code>
        <Button
          variant="outline"
          size="sm"
          onClick={async () => {
            try {
              await navigator.clipboard.writeText(k.key);
              setCopied(true);
            } catch {
              // No clipboard (a plain-http page is no secure context) or
              // no permission: select the key to copy by hand.
              setCopied(false);
              const sel = window.getSelection();
              if (code.current && sel) sel.selectAllChildren(code.current);
            }
          }}
        >
          <Copy className="h-4 w-4" aria-hidden /> {copied ? "Copied" : "Copy"}
        </Button>
        <Button variant="ghost" size="sm" onClick={onDone}>
          Done
        </Button>
      </div>
      {copied === false && <p className="mt-2 font-medium">Could not copy to the clipboard: the key is selected, copy it with Ctrl+C (⌘C).</p>}
    </div>
  );
}
