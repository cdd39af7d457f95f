export function Json({ value }: { value: unknown }) {
  if (value == null || (typeof value === "object" && Object.keys(value as object).length === 0)) {
    return <p className="text-sm text-[var(--muted)]">—</p>;
  }
  return <pre className="max-h-96 overflow-auto rounded-md bg-slate-50 p-3 font-mono text-xs dark:bg-slate-950">{JSON.stringify(value, null, 2)}</pre>;
}
