import type { Job } from "@/lib/types";

export interface Bucket {
  start: number;
  completed: number;
  failed: number;
  other: number;
}

/** Counts jobs per hour over the `hours` hours before now, by outcome. */
export function bucketJobs(jobs: Job[], now: number, hours = 24): Bucket[] {
  const hour = 3600_000;
  const end = Math.ceil(now / hour) * hour;
  const first = end - hours * hour;
  const buckets: Bucket[] = Array.from({ length: hours }, (_, i) => ({ start: first + i * hour, completed: 0, failed: 0, other: 0 }));
  for (const j of jobs) {
    const t = Date.parse(j.created_at);
    const i = Math.floor((t - first) / hour);
    if (i < 0 || i >= hours) continue;
    const b = buckets[i];
    if (j.status === "completed") b.completed++;
    else if (j.status === "failed") b.failed++;
    else b.other++;
  }
  return buckets;
}

export function ThroughputChart({ buckets }: { buckets: Bucket[] }) {
  const max = Math.max(1, ...buckets.map((b) => b.completed + b.failed + b.other));
  const w = 24;
  const h = 120;
  const total = buckets.reduce((n, b) => n + b.completed + b.failed + b.other, 0);
  return (
    <figure>
      <svg viewBox={`0 0 ${buckets.length * w} ${h + 16}`} className="h-40 w-full" role="img" aria-label={`Jobs per hour over the last ${buckets.length} hours: ${total} in all`}>
        {buckets.map((b, i) => {
          const parts: [number, string][] = [
            [b.completed, "#059669"],
            [b.failed, "#dc2626"],
            [b.other, "#0284c7"],
          ];
          let y = h;
          const label = new Date(b.start).getHours();
          return (
            <g key={b.start}>
              <title>{`${label}:00 — ${b.completed} completed, ${b.failed} failed, ${b.other} other`}</title>
              {parts.map(([n, color], k) => {
                const bh = (n / max) * (h - 4);
                y -= bh;
                return n > 0 ? <rect key={k} x={i * w + 3} y={y} width={w - 6} height={bh} fill={color} rx={2} /> : null;
              })}
              {i % 3 === 0 && (
                <text x={i * w + w / 2} y={h + 13} fontSize="10" textAnchor="middle" fill="currentColor" opacity={0.7}>
                  {String(label).padStart(2, "0")}
                </text>
              )}
            </g>
          );
        })}
      </svg>
      <figcaption className="mt-1 flex gap-4 text-xs text-[var(--muted)]">
        <span><span className="mr-1 inline-block h-2 w-2 rounded-sm bg-emerald-600" />completed</span>
        <span><span className="mr-1 inline-block h-2 w-2 rounded-sm bg-red-600" />failed</span>
        <span><span className="mr-1 inline-block h-2 w-2 rounded-sm bg-sky-600" />other</span>
      </figcaption>
    </figure>
  );
}
