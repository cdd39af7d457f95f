import { AlertTriangle, Loader2, RotateCcw } from "lucide-react";
import { isValidElement, type ReactNode } from "react";
import { Button } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { ApiError } from "@/lib/api";
import type { Loaded } from "@/lib/hooks";
import { cn } from "@/lib/utils";

/** Whether asking again may help: the server did not answer, or failed
 * (not a 4xx, which says what was asked for is wrong or not there). */
export function retryable(error: Error): boolean {
  return error instanceof ApiError && (error.status === 0 || error.status >= 500);
}

/** An error; with onRetry, a *Try again* button when asking again may
 * help (a page that does not poll otherwise stays on the error after the
 * server is back). */
export function ErrorBox({ error, onRetry }: { error: Error; onRetry?: () => void }) {
  const details = error instanceof ApiError ? error.details : [];
  return (
    <div role="alert" className="flex gap-2 rounded-md border border-red-300 bg-red-50 p-3 text-sm text-red-800 dark:border-red-800 dark:bg-red-950 dark:text-red-200">
      <AlertTriangle className="mt-0.5 h-4 w-4 shrink-0" aria-hidden />
      <div>
        <p>{error.message}</p>
        {details.length > 0 && (
          <ul className="mt-1 list-disc pl-5">
            {details.map((d) => (
              <li key={d}>{d}</li>
            ))}
          </ul>
        )}
        {onRetry && retryable(error) && (
          <Button variant="outline" size="sm" className="mt-2" onClick={onRetry}>
            <RotateCcw className="h-4 w-4" aria-hidden /> Try again
          </Button>
        )}
      </div>
    </div>
  );
}

export function Spinner({ label = "Loading…" }: { label?: string }) {
  return (
    <div className="flex items-center gap-2 p-4 text-sm text-[var(--muted)]" role="status">
      <Loader2 className="h-4 w-4 animate-spin" aria-hidden /> {label}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="p-4 text-sm text-[var(--muted)]">{children}</p>;
}

export function PageHeader({ title, children, sub }: { title: ReactNode; sub?: ReactNode; children?: ReactNode }) {
  return (
    <div className="mb-4 flex flex-wrap items-start justify-between gap-3">
      <div className="min-w-0">
        <h1 className="truncate text-xl font-semibold">{title}</h1>
        {sub && <div className="mt-1 text-sm text-[var(--muted)]">{sub}</div>}
      </div>
      {children && <div className="flex flex-wrap items-center gap-2">{children}</div>}
    </div>
  );
}

/** The class of a body row of a DataTable. */
export const rowClass = "border-b border-[var(--border)] last:border-0";

/** The widths (of a DataTable's box) from which an optional column shows:
 * Tailwind's container sizes, @sm 384 px, @md 448, @lg 512, @2xl 672. */
export type ColumnFrom = "sm" | "md" | "lg" | "2xl";

/** The classes of an optional column's cells (its header gets them from
 * DataTable): hidden while the table's box is narrower than `from`. */
export const wideOnly: Record<ColumnFrom, string> = {
  sm: "hidden @sm:table-cell",
  md: "hidden @md:table-cell",
  lg: "hidden @lg:table-cell",
  "2xl": "hidden @2xl:table-cell",
};

/** The classes of what stands in for optional columns while they are
 * hidden (their key facts, in a short line of the row's first cell). */
export const narrowOnly: Record<ColumnFrom, string> = {
  sm: "@sm:hidden",
  md: "@md:hidden",
  lg: "@lg:hidden",
  "2xl": "@2xl:hidden",
};

/** A column of a DataTable: its header, or false (left out), or an
 * optional column shown only from a width of the table's box on. */
export type Column = ReactNode | false | { label: ReactNode; from: ColumnFrom };

function optional(c: Column): c is { label: ReactNode; from: ColumnFrom } {
  return typeof c === "object" && c !== null && !isValidElement(c) && "from" in c;
}

/** A table of the app's lists: it has a header row of columns and
 * children as its body rows; footer follows the table. It fits the width
 * it is given (a phone's): optional columns (see Column) hide by the width
 * of the table's box — a container query, so the navigation column beside
 * the page and a half-width card count — and their cells take
 * wideOnly[from]. It still scrolls sideways, inside its box, if a cell
 * cannot wrap. */
export function DataTable({
  columns,
  children,
  footer,
  headClassName,
  thClassName = "px-3 py-2 font-medium",
}: {
  columns: Column[];
  children: ReactNode;
  footer?: ReactNode;
  headClassName?: string;
  thClassName?: string;
}) {
  return (
    <div className="@container overflow-x-auto">
      <table className="w-full text-sm">
        <thead className={cn("text-left text-xs uppercase text-[var(--muted)]", headClassName)}>
          <tr className="border-b border-[var(--border)]">
            {columns.map(
              (c, i) =>
                c !== false && (
                  <th key={i} scope="col" className={cn(thClassName, optional(c) && wideOnly[c.from])}>
                    {optional(c) ? c.label : c}
                  </th>
                ),
            )}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
      {footer}
    </div>
  );
}

/** What a useLoad has: its error, a spinner until the first data, then
 * children(data). */
export function Loading<T>({ load, children }: { load: Loaded<T>; children: (data: T) => ReactNode }) {
  return (
    <>
      {load.error && <ErrorBox error={load.error} onRetry={load.reload} />}
      {load.data === undefined ? !load.error && <Spinner /> : children(load.data)}
    </>
  );
}

/** A list page's body: the load's error above a Card that has a spinner
 * until the first data, then the empty note when items(data) is empty and
 * children(data) when not (or always, without items). */
export function ListCard<T>({
  load,
  items,
  empty,
  children,
}: {
  load: Loaded<T>;
  items?: (data: T) => unknown[];
  empty?: ReactNode;
  children: (data: T) => ReactNode;
}) {
  return (
    <>
      {load.error && <ErrorBox error={load.error} onRetry={load.reload} />}
      <Card>
        {load.data === undefined ? !load.error && <Spinner /> : items?.(load.data).length === 0 ? <Empty>{empty}</Empty> : children(load.data)}
      </Card>
    </>
  );
}
