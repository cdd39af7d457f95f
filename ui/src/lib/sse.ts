// Server-Sent Events over fetch, so requests carry the Authorization header
// (EventSource cannot) and resume with Last-Event-ID after a drop.
import { apiFetch } from "./api";
import type { LogLine } from "./types";

export interface SSEEvent {
  id?: string;
  event: string;
  data: string;
}

/** Incremental parser of the text/event-stream format. */
export class SSEParser {
  private buf = "";
  private data: string[] = [];
  private event = "";
  private id: string | undefined;

  push(chunk: string): SSEEvent[] {
    const buf = this.buf + chunk;
    const out: SSEEvent[] = [];
    let pos = 0;
    // Scan with an index (no re-slicing of the rest per line: a burst of
    // thousands of events in one chunk stays linear).
    for (;;) {
      let nl = pos;
      while (nl < buf.length && buf.charCodeAt(nl) !== 10 && buf.charCodeAt(nl) !== 13) nl++;
      if (nl >= buf.length) break;
      if (buf.charCodeAt(nl) === 13 && nl + 1 === buf.length) break; // a CR that may be half of a CRLF: wait for more
      const line = buf.slice(pos, nl);
      pos = nl + (buf.charCodeAt(nl) === 13 && buf.charCodeAt(nl + 1) === 10 ? 2 : 1);
      this.line(line, out);
    }
    this.buf = buf.slice(pos);
    return out;
  }

  private line(line: string, out: SSEEvent[]) {
    if (line === "") {
      if (this.data.length > 0 || this.event) {
        out.push({ id: this.id, event: this.event || "message", data: this.data.join("\n") });
      }
      this.data = [];
      this.event = "";
      return;
    }
    if (line.startsWith(":")) return; // comment (keep-alive)
    const c = line.indexOf(":");
    const field = c < 0 ? line : line.slice(0, c);
    let value = c < 0 ? "" : line.slice(c + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    else if (field === "id") this.id = value;
  }
}

export interface LogStreamHandlers {
  onLines: (lines: LogLine[]) => void;
  onDone: (status: string) => void;
  onState?: (s: "connecting" | "open" | "retrying") => void;
}

/** Follows a job's log stream (one step's when step is set) until the
 * server sends `done` or the signal aborts; reconnects after a dropped
 * connection from the last line seen, so no line is lost or repeated. */
export async function followLogs(jobId: string, step: string | undefined, h: LogStreamHandlers, signal: AbortSignal) {
  let last = 0;
  let delay = 500;
  while (!signal.aborted) {
    h.onState?.("connecting");
    try {
      const q = new URLSearchParams();
      if (step) q.set("step", step);
      const res = await apiFetch(`/api/jobs/${encodeURIComponent(jobId)}/logs/stream${q.size ? "?" + q : ""}`, {
        headers: { Accept: "text/event-stream", ...(last ? { "Last-Event-ID": String(last) } : {}) },
        signal,
      });
      h.onState?.("open");
      delay = 500;
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      const parser = new SSEParser();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const batch: LogLine[] = [];
        for (const ev of parser.push(value)) {
          if (ev.event === "done") {
            if (batch.length) h.onLines(batch);
            let status = "";
            try {
              status = JSON.parse(ev.data).status;
            } catch {
              /* keep empty */
            }
            h.onDone(status);
            return;
          }
          if (ev.event !== "message") continue;
          try {
            const l = JSON.parse(ev.data) as LogLine;
            if (l.seq > last) {
              last = l.seq;
              batch.push(l);
            }
          } catch {
            /* ignore a malformed event */
          }
        }
        if (batch.length) h.onLines(batch);
      }
    } catch (e) {
      if (signal.aborted) return;
      if ((e as { status?: number }).status === 404) return;
    }
    if (signal.aborted) return;
    h.onState?.("retrying");
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 10_000);
  }
}
