import { useVirtualizer } from "@tanstack/react-virtual";
import { Download, Pause, Play, Search } from "lucide-react";
import { memo, useEffect, useMemo, useRef, useState } from "react";
import { ansiSegments, stripAnsi } from "@/lib/ansi";
import { followLogs } from "@/lib/sse";
import type { LogLine } from "@/lib/types";
import { cn } from "@/lib/utils";
import { Button } from "./ui/button";
import { Input, Select } from "./ui/input";

const ROW = 20;

/** Whether name is an instance (loop[0], loop[1], …) of the loop step. */
function isInstanceOf(name: string, loop: string): boolean {
  return name.length > loop.length + 2 && name.startsWith(loop + "[") && /^\[\d+\]$/.test(name.slice(loop.length));
}

const Line = memo(function Line({ l, showStep, query }: { l: LogLine; showStep: boolean; query: string }) {
  const segs = ansiSegments(l.text);
  const err = l.stream === "stderr";
  return (
    <div
      className={cn("flex h-5 whitespace-pre font-mono text-xs leading-5", err && "bg-red-50 dark:bg-red-950/40")}
      data-stream={l.stream}
      data-seq={l.seq}
    >
      <span className={cn("w-1 shrink-0", err ? "bg-red-600" : "bg-transparent")} aria-hidden />
      <span className="w-12 shrink-0 select-none pr-2 text-right text-slate-500 dark:text-slate-400">{l.seq}</span>
      {err && <span className="mr-1 select-none rounded bg-red-700 px-1 text-[10px] font-semibold text-white" title="standard error">ERR</span>}
      {showStep && <span className="mr-2 shrink-0 select-none text-sky-700 dark:text-sky-400">{l.step}</span>}
      <span className={cn(err && "text-red-800 dark:text-red-300")}>
        {segs.map((s, i) => {
          const style = s.fg || s.bg ? { color: s.fg, backgroundColor: s.bg } : undefined;
          const cls = cn(s.bold && "font-bold", s.italic && "italic", s.underline && "underline");
          if (query) {
            const parts = s.text.split(new RegExp(`(${query.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")})`, "i"));
            return (
              <span key={i} style={style} className={cls}>
                {parts.map((p, k) => (k % 2 === 1 ? <mark key={k} className="bg-yellow-200 text-slate-900">{p}</mark> : p))}
              </span>
            );
          }
          return (
            <span key={i} style={style} className={cls}>
              {s.text}
            </span>
          );
        })}
      </span>
    </div>
  );
});

/** Live log of a job (one step, or all), streamed over SSE into a
 * virtualised list: only the visible rows are in the DOM, and arriving
 * lines are rendered at most once per animation frame. */
export const LogViewer = memo(function LogViewer({ jobId, steps, initialStep = "" }: { jobId: string; steps: string[]; initialStep?: string }) {
  const [step, setStep] = useState(initialStep);
  const buf = useRef<LogLine[]>([]);
  const [count, setCount] = useState(0);
  const [ended, setEnded] = useState<string>();
  const [state, setState] = useState<string>("connecting");
  const [follow, setFollow] = useState(true);
  const [query, setQuery] = useState("");
  const scroller = useRef<HTMLDivElement>(null);
  const frame = useRef(0);

  useEffect(() => setStep(initialStep), [initialStep]);

  // A for_each loop step prints nothing itself: its instances (step[0],
  // step[1], …) do. Chosen, it shows theirs, from the stream of all steps
  // filtered here (the server's ?step= of a loop step gives the same lines).
  const loop = !!step && steps.some((s) => isInstanceOf(s, step));
  const showStep = !step || loop;

  useEffect(() => {
    buf.current = [];
    setCount(0);
    setEnded(undefined);
    const ac = new AbortController();
    void followLogs(
      jobId,
      step && !loop ? step : undefined,
      {
        onLines: (ls) => {
          for (const l of ls) if (!loop || isInstanceOf(l.step, step)) buf.current.push(l);
          if (!frame.current) {
            frame.current = requestAnimationFrame(() => {
              frame.current = 0;
              setCount(buf.current.length);
            });
          }
        },
        onDone: (s) => {
          setCount(buf.current.length);
          setEnded(s || "ended");
        },
        onState: setState,
      },
      ac.signal,
    );
    return () => {
      ac.abort();
      cancelAnimationFrame(frame.current);
      frame.current = 0;
    };
  }, [jobId, step, loop]);

  const q = query.trim();
  // Without a search the buffer itself is the list (no copy per frame).
  const filtered = useMemo(() => {
    if (!q) return null;
    const s = q.toLowerCase();
    return buf.current.slice(0, count).filter((l) => stripAnsi(l.text).toLowerCase().includes(s));
  }, [count, q]);
  const rows = filtered ?? buf.current;
  const n = filtered ? filtered.length : count;

  const v = useVirtualizer({
    count: n,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW,
    overscan: 20,
    initialRect: { width: 800, height: 384 }, // the log box (h-96) until measured
  });

  useEffect(() => {
    if (follow && n > 0) v.scrollToIndex(n - 1, { align: "end" });
  }, [n, follow, v]);

  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < ROW * 2;
    if (!atBottom && follow) setFollow(false);
  };

  const download = () => {
    const text = buf.current.map((l) => (showStep ? `[${l.step}] ` : "") + (l.stream === "stderr" ? "[stderr] " : "") + stripAnsi(l.text)).join("\n") + "\n";
    const url = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = `job-${jobId.slice(0, 8)}${step ? "-" + step : ""}.log`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };

  return (
    <div className="flex flex-col">
      <div className="flex flex-wrap items-center gap-2 border-b border-[var(--border)] p-2">
        <Select aria-label="Step" className="w-44" value={step} onChange={(e) => setStep(e.target.value)}>
          <option value="">all steps</option>
          {steps.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </Select>
        <div className="relative">
          <Search className="pointer-events-none absolute left-2.5 top-2.5 h-4 w-4 text-[var(--muted)]" aria-hidden />
          <Input type="search" aria-label="Search the log" placeholder="Search…" className="w-48 pl-8" value={query} onChange={(e) => setQuery(e.target.value)} />
        </div>
        <Button variant="outline" size="sm" onClick={() => setFollow((f) => !f)} aria-pressed={follow}>
          {follow ? <Pause className="h-4 w-4" aria-hidden /> : <Play className="h-4 w-4" aria-hidden />}
          {follow ? "Pause" : "Follow"}
        </Button>
        <Button variant="outline" size="sm" onClick={download} disabled={count === 0}>
          <Download className="h-4 w-4" aria-hidden /> Download
        </Button>
        <span className="ml-auto text-xs text-[var(--muted)]" aria-live="polite" data-testid="log-state">
          {q ? `${n} of ${count} ${count === 1 ? "line" : "lines"}` : `${count} ${count === 1 ? "line" : "lines"}`} · {ended ? `stream ended (${ended})` : state === "open" ? "live" : state}
        </span>
      </div>
      <div ref={scroller} onScroll={onScroll} className="h-96 overflow-auto bg-slate-50 dark:bg-slate-950" tabIndex={0} aria-label="Log output" role="log">
        {n === 0 && <p className="p-3 text-xs text-[var(--muted)]">{ended ? "No output." : "Waiting for output…"}</p>}
        <div style={{ height: v.getTotalSize(), position: "relative", minWidth: "100%" }} className="w-max">
          {v.getVirtualItems().map((item) => (
            <div key={item.key} style={{ position: "absolute", top: 0, left: 0, right: 0, transform: `translateY(${item.start}px)` }}>
              <Line l={rows[item.index]} showStep={showStep} query={q} />
            </div>
          ))}
        </div>
      </div>
    </div>
  );
});
