import { useCallback, useEffect, useRef, useState } from "react";

export interface Loaded<T> {
  data: T | undefined;
  error: Error | undefined;
  loading: boolean;
  reload: () => void;
}

/** The wait between two loads: milliseconds, false for none, or a function
 * of the last data loaded (until some is, a load is tried every second). */
export type PollInterval<T> = number | false | ((data: T) => number | false);

/** Loads fn() now and again whenever deps change; with intervalMs, polls
 * while the page is visible (live status without a push channel). A new
 * intervalMs applies from the next wait on; only turning polling on or off
 * reloads at once. Polling stops when the first load is refused with a 4xx
 * (what it asks for does not exist). */
export function useLoad<T>(fn: () => Promise<T>, deps: unknown[], intervalMs?: PollInterval<T>): Loaded<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<Error>();
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const intervalRef = useRef(intervalMs);
  intervalRef.current = intervalMs;
  const polling = !!intervalMs;
  const reload = useCallback(() => setTick((t) => t + 1), []);

  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let last: { data: T } | undefined;
    let failedFor4xx = false;
    const run = async () => {
      failedFor4xx = false;
      try {
        const d = await fnRef.current();
        if (!live) return;
        last = { data: d };
        setData(d);
        setError(undefined);
      } catch (e) {
        if (!live) return;
        const status = (e as { status?: number }).status ?? 0;
        failedFor4xx = status >= 400 && status < 500;
        setError(e as Error);
      } finally {
        if (live) setLoading(false);
      }
      const iv = intervalRef.current;
      let every = typeof iv === "function" ? (last ? iv(last.data) : 1000) : iv;
      // What was never there (a job id that does not exist, a bad filter:
      // 4xx before any data) will not be there in a second either; a new
      // deps or reload() asks again. Unreachable servers and 5xx are retried.
      if (!last && failedFor4xx) every = false;
      if (live && every) {
        timer = setTimeout(function again() {
          if (document.hidden) timer = setTimeout(again, every);
          else void run();
        }, every);
      }
    };
    setLoading(true);
    void run();
    return () => {
      live = false;
      clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick, polling]);

  return { data, error, loading, reload };
}

export function useTitle(title: string) {
  useEffect(() => {
    document.title = title ? `${title} · Strøm` : "Strøm";
  }, [title]);
}

/** Re-renders every ms (for "3 s ago" and running durations). */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}
