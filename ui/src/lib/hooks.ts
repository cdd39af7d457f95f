import { useCallback, useEffect, useRef, useState } from "react";

export interface Loaded<T> {
  data: T | undefined;
  error: Error | undefined;
  loading: boolean;
  reload: () => void;
}

/** Loads fn() now and again whenever deps change; with intervalMs, polls
 * while the page is visible (live status without a push channel). */
export function useLoad<T>(fn: () => Promise<T>, deps: unknown[], intervalMs?: number | false): Loaded<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<Error>();
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const reload = useCallback(() => setTick((t) => t + 1), []);

  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      try {
        const d = await fnRef.current();
        if (!live) return;
        setData(d);
        setError(undefined);
      } catch (e) {
        if (!live) return;
        setError(e as Error);
      } finally {
        if (live) setLoading(false);
      }
      if (live && intervalMs) {
        timer = setTimeout(function again() {
          if (document.hidden) timer = setTimeout(again, intervalMs);
          else void run();
        }, intervalMs);
      }
    };
    setLoading(true);
    void run();
    return () => {
      live = false;
      clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick, intervalMs]);

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
