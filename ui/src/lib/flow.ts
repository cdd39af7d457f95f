import type { DagStep } from "@/components/Dag";
import { groupSteps, instanceOf } from "./loops";
import type { FlowStep, Job } from "./types";

/** A task's flow as DAG steps, from either API shape (list or map). */
export function flowSteps(flow: FlowStep[] | Record<string, FlowStep> | null | undefined): DagStep[] {
  if (!flow) return [];
  const entries: [string, FlowStep][] = Array.isArray(flow) ? flow.map((s) => [s.name ?? "", s]) : Object.entries(flow);
  return entries.map(([name, s]) => ({ name, action: s.action, dependsOn: s.depends_on ?? [] }));
}

/** A job's steps as DAG steps coloured by their live status; a for_each
 * loop is one node carrying its instances (a dependency on an instance
 * counts as one on its loop). */
export function jobSteps(job: Job): DagStep[] {
  return groupSteps(job.steps ?? []).map(({ step: s, instances }) => ({
    name: s.step_name,
    action: s.action_name,
    dependsOn: [...new Set((s.depends_on ?? []).map((d) => instanceOf({ step_name: d } as never)?.base ?? d))],
    status: s.status,
    ...(instances.length > 0 ? { instances: instances.map((i) => ({ name: i.step_name, status: i.status })) } : {}),
    ...(s.action_type === "approval" ? { kind: "approval" } : s.action_type === "task" ? { kind: "task" } : {}),
  }));
}
