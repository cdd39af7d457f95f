import type { Step } from "./types";

/** A step of a job with, for a for_each loop, its instances. */
export interface StepGroup {
  step: Step;
  instances: Step[];
}

const instanceName = /^(.+)\[(\d+)\]$/;

/** Whether a step is an instance of a for_each loop, and of which step:
 * the server's loop fields when it sends them, else the reference's
 * instance naming `step[i]` (step names cannot contain brackets). */
export function instanceOf(s: Step): { base: string; index: number } | null {
  const m = instanceName.exec(s.step_name);
  const loop = s.loop ?? s.loop_source;
  if (loop) return { base: loop, index: s.loop_index ?? (m ? Number(m[2]) : 0) };
  return m ? { base: m[1], index: Number(m[2]) } : null;
}

/** The status of a loop from its instances, for servers that list no
 * placeholder row. */
export function loopStatus(instances: Step[]): Step["status"] {
  const has = (st: string) => instances.some((i) => i.status === st);
  if (has("running")) return "running";
  if (has("suspended")) return "suspended";
  if (has("pending") || has("ready")) return has("completed") || has("failed") ? "running" : "pending";
  if (has("failed")) return "failed";
  if (has("cancelled")) return "cancelled";
  if (instances.length > 0 && instances.every((i) => i.status === "skipped")) return "skipped";
  return "completed";
}

/** The steps in the server's order with loop instances grouped under their
 * loop step (sorted by index). */
export function groupSteps(steps: Step[]): StepGroup[] {
  const groups: StepGroup[] = [];
  const byName = new Map<string, StepGroup>();
  const orphans = new Map<string, Step[]>();
  for (const s of steps) {
    if (instanceOf(s)) continue;
    const g = { step: s, instances: [] };
    groups.push(g);
    byName.set(s.step_name, g);
  }
  for (const s of steps) {
    const i = instanceOf(s);
    if (!i) continue;
    const g = byName.get(i.base);
    if (g) g.instances.push(s);
    else if (orphans.has(i.base)) orphans.get(i.base)!.push(s);
    else orphans.set(i.base, [s]);
  }
  // Instances whose loop step is not listed: a group of their own.
  for (const [base, inst] of orphans) {
    const first = inst[0];
    const g: StepGroup = {
      step: { step_name: base, action_name: first.action_name, action_type: first.action_type, depends_on: first.depends_on, status: loopStatus(inst) },
      instances: inst,
    };
    groups.push(g);
    byName.set(base, g);
  }
  const index = new Map<Step, number>(); // instanceOf once per instance, not per comparison
  for (const g of groups) for (const s of g.instances) index.set(s, instanceOf(s)?.index ?? 0);
  for (const g of groups) {
    g.instances.sort((a, b) => index.get(a)! - index.get(b)!);
    // The loop step stays pending while its instances run: show theirs.
    if (g.instances.length > 0 && (g.step.status === "pending" || g.step.status === "ready")) g.step = { ...g.step, status: loopStatus(g.instances) };
  }
  return groups;
}

/** "2 of 3 completed · 1 running" */
export function loopSummary(instances: Step[]): string {
  const counts = new Map<string, number>();
  for (const i of instances) counts.set(i.status, (counts.get(i.status) ?? 0) + 1);
  const done = counts.get("completed") ?? 0;
  counts.delete("completed");
  const rest = [...counts.entries()].map(([st, n]) => `${n} ${st}`);
  return [`${done} of ${instances.length} completed`, ...rest].join(" · ");
}

/** The loop item of an instance: its own field, or the loop step's
 * `input.items` at its index. */
export function instanceItem(s: Step, loop?: Step): unknown {
  if (s.loop_item !== undefined) return s.loop_item;
  const items = loop?.input?.items;
  const i = instanceOf(s)?.index;
  if (Array.isArray(items) && i !== undefined && i < items.length) return items[i];
  return undefined;
}

/** A step's output as an object (an approval gate's always is); undefined
 * when it is not one. */
function outputObject(s: Step): Record<string, unknown> | undefined {
  const o = s.output;
  return o !== null && typeof o === "object" && !Array.isArray(o) ? (o as Record<string, unknown>) : undefined;
}

/** When an undecided approval gate times out, if it has a timeout. */
export function approvalDeadline(s: Step): string | undefined {
  const t = outputObject(s)?.timeout_at;
  return typeof t === "string" ? t : undefined;
}

/** The message an approval step shows its approvers. */
export function approvalMessage(s: Step): string {
  const pick = (v: unknown) => (typeof v === "string" && v.trim() ? v : undefined);
  return pick(s.approval_message) ?? pick(s.message) ?? pick(outputObject(s)?.message) ?? pick(s.input?.message) ?? "Approve this step to let the job continue.";
}

/** Whether a step waits for a human decision (a suspended `type: task`
 * step waits for its sub-job instead). */
export const awaitsApproval = (s: Step) => s.status === "suspended" && s.action_type !== "task";

/** What a suspended step waits for, in words. */
export const suspendedLabel = (s: Step) => (s.action_type === "task" ? "waiting for sub-job" : "waiting for approval");
