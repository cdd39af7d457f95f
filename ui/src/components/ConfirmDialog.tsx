import { useState, type ReactNode } from "react";
import { ErrorBox } from "@/components/common";
import { Button, type ButtonProps } from "@/components/ui/button";
import { Dialog, DialogClose, DialogContent, DialogDescription, DialogTitle, DialogTrigger } from "@/components/ui/dialog";

/** A button that opens a dialog asking to confirm an action: the title,
 * the description and any fields (children), then "keep" (closes) and
 * "confirm", which runs onConfirm, disabled and labelled busyLabel while it
 * runs. It closes when onConfirm succeeds and shows its error otherwise;
 * reopening clears the error. */
export function ConfirmDialog({
  trigger,
  title,
  description,
  children,
  keep,
  confirm,
  busyLabel,
  variant = "destructive",
  onConfirm,
}: {
  trigger: ReactNode;
  title: ReactNode;
  description: ReactNode;
  children?: ReactNode;
  keep: ReactNode;
  confirm: ReactNode;
  busyLabel: ReactNode;
  variant?: ButtonProps["variant"];
  onConfirm: () => Promise<void>;
}) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error>();
  return (
    <Dialog open={open} onOpenChange={(o) => (setOpen(o), setError(undefined))}>
      <DialogTrigger asChild>{trigger}</DialogTrigger>
      <DialogContent>
        <DialogTitle>{title}</DialogTitle>
        <DialogDescription>{description}</DialogDescription>
        {children}
        {error && (
          <div className="mt-3">
            <ErrorBox error={error} />
          </div>
        )}
        <div className="mt-5 flex justify-end gap-2">
          <DialogClose asChild>
            <Button variant="outline">{keep}</Button>
          </DialogClose>
          <Button
            variant={variant}
            disabled={busy}
            onClick={async () => {
              setBusy(true);
              try {
                await onConfirm();
                setOpen(false);
              } catch (e) {
                setError(e as Error);
              } finally {
                setBusy(false);
              }
            }}
          >
            {busy ? busyLabel : confirm}
          </Button>
        </div>
      </DialogContent>
    </Dialog>
  );
}
