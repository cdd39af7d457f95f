import type { DagStep } from "@/components/Dag";
import type { FlowStep, Job } from "./types";

/** A task's flow as DAG steps, from either API shape (list or map). */
export function flowSteps(flow: FlowStep[] | Record<string, FlowStep> | null | undefined): DagStep[] {
  if (!flow) return [];
  const entries: [string, FlowStep][] = Array.isArray(flow) ? flow.map((s) => [s.name ?? "", s]) : Object.entries(flow);
  return entries.map(([name, s]) => ({ name, action: s.action, dependsOn: s.depends_on ?? [] }));
}

/** A job's steps as DAG steps coloured by their live status. */
export function jobSteps(job: Job): DagStep[] {
  return (job.steps ?? []).map((s) => ({ name: s.step_name, action: s.action_name, dependsOn: s.depends_on ?? [], status: s.status }));
}
