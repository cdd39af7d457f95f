import { AlertTriangle, RotateCcw } from "lucide-react";
import { Component, type ReactNode } from "react";
import { Button } from "./ui/button";

/** A page's code that did not arrive (the browser's message for a failed
 * import()). */
export function isChunkError(e: Error): boolean {
  return /dynamically imported module|Importing a module script failed|error loading dynamically imported module/i.test(e.message);
}

/** Catches what a page throws while it renders (above all, its code not
 * arriving: the server went away, or was upgraded, since the app was
 * opened) and shows it with a way out, instead of React unmounting the
 * whole app to a blank page. For missing code that is reloading the app:
 * the browser keeps a failed import's failure, and after an upgrade the
 * code has new names. Otherwise *Try again* renders the page anew. Key it
 * by the address so that following a link starts afresh. */
export class PageBoundary extends Component<{ children: ReactNode; reload?: () => void }, { error?: Error; attempt: number }> {
  state: { error?: Error; attempt: number } = { attempt: 0 };

  static getDerivedStateFromError(error: Error) {
    return { error };
  }

  render() {
    const { error, attempt } = this.state;
    if (!error) return <Reset key={attempt}>{this.props.children}</Reset>;
    const chunk = isChunkError(error);
    return (
      <div role="alert" className="flex gap-2 rounded-md border border-red-300 bg-red-50 p-3 text-sm text-red-800 dark:border-red-800 dark:bg-red-950 dark:text-red-200">
        <AlertTriangle className="mt-0.5 h-4 w-4 shrink-0" aria-hidden />
        <div className="space-y-2">
          <p className="font-medium">{chunk ? "This page could not be loaded: the server did not answer." : "This page failed to show."}</p>
          <p className="font-mono text-xs wrap-anywhere">{error.message}</p>
          <Button
            variant="outline"
            size="sm"
            onClick={() => (chunk ? (this.props.reload ?? (() => location.reload()))() : this.setState({ error: undefined, attempt: attempt + 1 }))}
          >
            <RotateCcw className="h-4 w-4" aria-hidden /> {chunk ? "Reload" : "Try again"}
          </Button>
        </div>
      </div>
    );
  }
}

// Remounts the page on Try again.
function Reset({ children }: { children: ReactNode }) {
  return <>{children}</>;
}
