import { lazy, Suspense, type ComponentProps, type ReactNode } from "react";
import { Spinner } from "@/components/common";
import { Card, CardHeader, CardTitle } from "@/components/ui/card";

const Dag = lazy(() => import("@/components/Dag"));

/** The "Flow" card of the task and job pages: the steps' graph, loaded on
 * demand, under a title with a note beside it. */
export function FlowCard({ className, note, ...dag }: ComponentProps<typeof Dag> & { className?: string; note: ReactNode }) {
  return (
    <Card className={className}>
      <CardHeader>
        <CardTitle>Flow</CardTitle>
        <span className="text-xs text-[var(--muted)]">{note}</span>
      </CardHeader>
      <Suspense fallback={<Spinner />}>
        <Dag {...dag} />
      </Suspense>
    </Card>
  );
}
