import { describe, expect, it } from "vitest";
import { approvalMessage, groupSteps, instanceOf, loopStatus, loopSummary } from "./loops";
import { jobSteps } from "./flow";
import { layout } from "@/components/Dag";
import type { Job, Step } from "./types";

const st = (name: string, status: Step["status"], extra: Partial<Step> = {}): Step => ({ step_name: name, action_name: "a", action_type: "shell", status, ...extra });

describe("loops", () => {
  it("recognises instances by name and by the server's loop fields", () => {
    expect(instanceOf(st("deploy[2]", "running"))).toEqual({ base: "deploy", index: 2 });
    expect(instanceOf(st("deploy", "running"))).toBeNull();
    expect(instanceOf(st("x", "running", { loop_source: "fan", loop_index: 4 }))).toEqual({ base: "fan", index: 4 });
    expect(instanceOf(st("fan[3]", "running", { loop: "fan", loop_index: 3 }))).toEqual({ base: "fan", index: 3 });
  });

  it("groups instances under their loop step, in index order, keeping the step order", () => {
    const g = groupSteps([st("fetch", "completed"), st("process", "running"), st("process[10]", "pending"), st("process[2]", "completed"), st("process[0]", "running"), st("aggregate", "pending")]);
    expect(g.map((x) => x.step.step_name)).toEqual(["fetch", "process", "aggregate"]);
    expect(g[1].instances.map((i) => i.step_name)).toEqual(["process[0]", "process[2]", "process[10]"]);
    expect(g[0].instances).toEqual([]);
  });

  it("makes a loop row for instances whose loop step is not listed, with a status from them", () => {
    const g = groupSteps([st("fan[0]", "completed", { depends_on: ["a"] }), st("fan[1]", "failed")]);
    expect(g).toHaveLength(1);
    expect(g[0].step).toMatchObject({ step_name: "fan", status: "failed", depends_on: ["a"] });
    expect(loopStatus([st("x[0]", "completed"), st("x[1]", "pending")])).toBe("running");
    expect(loopStatus([st("x[0]", "pending")])).toBe("pending");
    expect(loopStatus([st("x[0]", "completed"), st("x[1]", "suspended")])).toBe("suspended");
    expect(loopStatus([st("x[0]", "skipped")])).toBe("skipped");
  });

  it("sums a loop up in words", () => {
    expect(loopSummary([st("p[0]", "completed"), st("p[1]", "running"), st("p[2]", "completed"), st("p[3]", "failed")])).toBe("2 of 4 completed · 1 running · 1 failed");
  });

  it("draws a loop as one node with its instances; dependencies on instances point at the loop", () => {
    const job = {
      job_id: "j",
      workspace: "w",
      task_name: "t",
      status: "running",
      source_type: "api",
      created_at: "",
      steps: [
        st("fetch", "completed"),
        st("process", "running", { depends_on: ["fetch"] }),
        st("process[0]", "completed", { depends_on: ["fetch"] }),
        st("process[1]", "running", { depends_on: ["fetch"] }),
        st("gate", "suspended", { action_type: "approval", depends_on: ["process[1]", "process"] }),
      ],
    } as Job;
    const d = jobSteps(job);
    expect(d.map((s) => s.name)).toEqual(["fetch", "process", "gate"]);
    expect(d[1].instances).toEqual([
      { name: "process[0]", status: "completed" },
      { name: "process[1]", status: "running" },
    ]);
    expect(d[2]).toMatchObject({ dependsOn: ["process"], kind: "approval", status: "suspended" });
    const { nodes, edges } = layout(d);
    expect(nodes).toHaveLength(3);
    expect(edges.map((e) => e.id).sort()).toEqual(["fetch->process", "process->gate"]);
  });

  it("finds an approval step's message in the places servers put it", () => {
    expect(approvalMessage(st("g", "suspended", { approval_message: "Ship 1.2?" }))).toBe("Ship 1.2?");
    expect(approvalMessage(st("g", "suspended", { message: "Ship?" }))).toBe("Ship?");
    expect(approvalMessage(st("g", "suspended", { input: { message: "From input" } }))).toBe("From input");
    expect(approvalMessage(st("g", "suspended"))).toMatch(/Approve this step/);
  });
});
