import { Check, Hand, X } from "lucide-react";
import { useState } from "react";
import { ConfirmDialog } from "@/components/ConfirmDialog";
import { Button } from "@/components/ui/button";
import { Label, Textarea } from "@/components/ui/input";
import { approvalDeadline, approvalMessage } from "@/lib/loops";
import { formatTime } from "@/lib/utils";
import type { Step } from "@/lib/types";

export type Decide = (step: string, approved: boolean, reason?: string, message?: string) => Promise<void>;

/** A step waiting for approval: its message, and Approve / Reject (with a
 * reason) for whoever may run the task. The server decides who may. */
export function ApprovalCard({ step, onDecide }: { step: Step; onDecide: Decide }) {
  return (
    <section
      aria-label={`Approval: ${step.step_name}`}
      data-approval={step.step_name}
      className="rounded-lg border-2 border-violet-400 bg-violet-50 p-4 text-violet-950 dark:border-violet-700 dark:bg-violet-950/60 dark:text-violet-100"
    >
      <h2 className="flex items-center gap-2 text-sm font-semibold">
        <Hand className="h-4 w-4" aria-hidden /> Step “{step.step_name}” is waiting for approval
      </h2>
      <p className="mt-2 whitespace-pre-wrap text-sm" data-testid="approval-message">
        {approvalMessage(step)}
      </p>
      {approvalDeadline(step) && <p className="mt-1 text-xs">Fails if undecided by {formatTime(approvalDeadline(step))}.</p>}
      <div className="mt-3 flex flex-wrap gap-2">
        <DecideDialog step={step} approve onDecide={onDecide} />
        <DecideDialog step={step} approve={false} onDecide={onDecide} />
      </div>
    </section>
  );
}

function DecideDialog({ step, approve, onDecide }: { step: Step; approve: boolean; onDecide: Decide }) {
  const [reason, setReason] = useState("");
  const [comment, setComment] = useState("");
  const verb = approve ? "Approve" : "Reject";
  return (
    <ConfirmDialog
      trigger={
        <Button variant={approve ? "default" : "destructive"} size="sm">
          {approve ? <Check className="h-4 w-4" aria-hidden /> : <X className="h-4 w-4" aria-hidden />} {verb}
        </Button>
      }
      title={
        <>
          {verb} “{step.step_name}”?
        </>
      }
      description={approve ? "The job continues with the steps that wait for this one." : "The step fails; the job stops unless the step has continue_on_failure."}
      keep="Not now"
      confirm={`${verb} step`}
      busyLabel={approve ? "Approving…" : "Rejecting…"}
      variant={approve ? "default" : "destructive"}
      onConfirm={() => onDecide(step.step_name, approve, approve ? undefined : reason.trim() || undefined, approve ? comment.trim() || undefined : undefined)}
    >
      {approve ? (
        <div className="mt-3 grid gap-1">
          <Label htmlFor={`comment-${step.step_name}`}>Comment (optional, kept with the decision)</Label>
          <Textarea id={`comment-${step.step_name}`} className="font-sans" value={comment} onChange={(e) => setComment(e.target.value)} maxLength={4000} />
        </div>
      ) : (
        <div className="mt-3 grid gap-1">
          <Label htmlFor={`reason-${step.step_name}`}>Reason (optional, kept with the decision)</Label>
          <Textarea id={`reason-${step.step_name}`} className="font-sans" value={reason} onChange={(e) => setReason(e.target.value)} maxLength={4000} />
        </div>
      )}
    </ConfirmDialog>
  );
}

/** The decision on an approval step, once made, in words (from its
 * output, where the server records it, or from step fields). */
export function decisionText(s: Step): string | null {
  if (s.action_type !== "approval") return null;
  const o = (s.output ?? {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === "string" && v ? v : undefined);
  if (s.status === "completed") {
    const who = str(o.approved_by) ?? s.approved_by ?? s.decided_by;
    const comment = str(o.comment);
    return `Approved${who ? ` by ${who}` : ""}${comment ? `: ${comment}` : ""}`;
  }
  if (s.status === "failed") {
    const who = str(o.rejected_by) ?? s.decided_by ?? undefined;
    const reason = str(o.rejection_reason) ?? s.rejection_reason ?? undefined;
    if (!who && !reason && o.approved !== false) return null;
    return `Rejected${who ? ` by ${who}` : ""}${reason ? `: ${reason}` : ""}`;
  }
  return null;
}
