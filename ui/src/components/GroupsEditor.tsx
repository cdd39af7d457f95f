import { Plus, X } from "lucide-react";
import { useEffect, useState, type FormEvent } from "react";
import { ErrorBox } from "@/components/common";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";

/** Group names the server accepts: 1–64 letters, digits, `_` or `-`. */
export const groupName = /^[A-Za-z0-9_-]{1,64}$/;

/** Edits a list of group names: remove with ×, add by typing (with the
 * groups in use as suggestions); Save sends the whole list. */
export function GroupsEditor({ groups, known, onSave }: { groups: string[]; known: string[]; onSave: (g: string[]) => Promise<void> }) {
  const [list, setList] = useState(groups);
  const [add, setAdd] = useState("");
  const [error, setError] = useState<Error>();
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);
  useEffect(() => setList(groups), [groups]);
  const dirty = list.join("\n") !== groups.join("\n");
  const addOne = (e: FormEvent) => {
    e.preventDefault();
    const g = add.trim();
    if (!g) return;
    if (!groupName.test(g)) return setError(new Error(`“${g}” is not a group name: 1–64 letters, digits, _ or -.`));
    setError(undefined);
    setSaved(false);
    if (!list.includes(g)) setList([...list, g].sort());
    setAdd("");
  };
  return (
    <div className="space-y-3">
      <ul className="flex flex-wrap gap-2" aria-label="Groups">
        {list.length === 0 && <li className="text-sm text-[var(--muted)]">No groups.</li>}
        {list.map((g) => (
          <li key={g} className="flex items-center gap-1 rounded-full bg-slate-100 py-0.5 pl-3 pr-1 text-sm dark:bg-slate-800">
            {g}
            <button
              type="button"
              className="rounded-full p-0.5 hover:bg-slate-200 dark:hover:bg-slate-700"
              aria-label={`Remove group ${g}`}
              onClick={() => {
                setSaved(false);
                setList(list.filter((x) => x !== g));
              }}
            >
              <X className="h-3.5 w-3.5" aria-hidden />
            </button>
          </li>
        ))}
      </ul>
      <form className="flex flex-wrap items-center gap-2" onSubmit={addOne}>
        <Input className="w-56" list="known-groups" value={add} onChange={(e) => setAdd(e.target.value)} aria-label="Add a group" placeholder="group name" />
        <datalist id="known-groups">
          {known
            .filter((g) => !list.includes(g))
            .map((g) => (
              <option key={g} value={g} />
            ))}
        </datalist>
        <Button type="submit" variant="outline" size="sm">
          <Plus className="h-4 w-4" aria-hidden /> Add
        </Button>
        <Button
          type="button"
          size="sm"
          disabled={!dirty || busy}
          onClick={async () => {
            setBusy(true);
            setError(undefined);
            try {
              await onSave(list);
              setSaved(true);
            } catch (e) {
              setError(e as Error);
            } finally {
              setBusy(false);
            }
          }}
        >
          {busy ? "Saving…" : "Save groups"}
        </Button>
        {saved && !dirty && <span role="status" className="text-sm text-emerald-800 dark:text-emerald-300">Saved.</span>}
      </form>
      {error && <ErrorBox error={error} />}
    </div>
  );
}
