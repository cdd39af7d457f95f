import { clsx, type ClassValue } from "clsx";
import { twMerge } from "tailwind-merge";

export function cn(...inputs: ClassValue[]) {
  return twMerge(clsx(inputs));
}

/** What a request that never reached the server means (the browser says
 * only "Failed to fetch", "Load failed" or "NetworkError…"). */
export function noAnswer(e: unknown): string {
  return `The server did not answer (${e instanceof Error ? e.message : String(e)}): it may be down or restarting.`;
}

export function formatDuration(ms: number | null | undefined): string {
  if (ms == null || !isFinite(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  const rs = Math.round(s % 60);
  if (m < 60) return `${m}m ${rs}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${m % 60}m`;
}

/** From start to end, or to now while it runs. The server stamps start and
 * the browser's clock gives now: a browser a few seconds behind the server
 * read "running for -3200 ms"; a running time is never below 0. */
export function durationBetween(start?: string | null, end?: string | null, now = Date.now()): number | null {
  if (!start) return null;
  const a = Date.parse(start);
  return end ? Date.parse(end) - a : Math.max(0, now - a);
}

export function timeAgo(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "—";
  const d = (now - Date.parse(iso)) / 1000;
  if (d < -5) return "in " + formatDuration(-d * 1000);
  if (d < 5) return "just now";
  if (d < 60) return `${Math.round(d)} s ago`;
  if (d < 3600) return `${Math.round(d / 60)} min ago`;
  if (d < 86400) return `${Math.round(d / 3600)} h ago`;
  return `${Math.round(d / 86400)} d ago`;
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

/** Where a job came from, short: its source type and id, the job ids in it
 * shortened as the job lists show them ("task: 7f1c9a52/deploy[2]" for a
 * sub-job, whose source_id is "<parent job id>/<step>"; "hook: 7f1c9a52"). */
export function sourceLabel(j: { source_type: string; source_id?: string | null }): string {
  const id = j.source_id ?? "";
  if (!id) return j.source_type;
  const short = (s: string) => (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s) ? s.slice(0, 8) : s);
  if (j.source_type === "task" || j.source_type === "hook") {
    const cut = id.indexOf("/");
    const shown = cut < 0 ? short(id) : short(id.slice(0, cut)) + id.slice(cut);
    return `${j.source_type}: ${shown}`;
  }
  return `${j.source_type}: ${id}`;
}
