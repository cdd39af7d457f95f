import dagre from "@dagrejs/dagre";
import { Background, Controls, Handle, MarkerType, Position, ReactFlow, type Edge, type Node, type NodeProps } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { CornerDownRight, Hand } from "lucide-react";
import { useEffect, useMemo, useState, type KeyboardEvent } from "react";
import { statusColor } from "./status";

export interface DagStep {
  name: string;
  action?: string;
  dependsOn: string[];
  status?: string;
  /** A for_each loop's instances, drawn inside its node. */
  instances?: { name: string; status: string }[];
  /** approval gate or sub-job step */
  kind?: "approval" | "task";
}

const W = 180;
const H = 52;
const LOOP_H = 74;
/** Instances drawn as squares in a loop node; more are summed up. */
export const MAX_SQUARES = 24;
const height = (s: DagStep) => (s.instances ? LOOP_H : H);

/** Lays the steps out top to bottom with dagre (positions of node centres
 * converted to React Flow's top-left corners). */
export function layout(steps: DagStep[]): { nodes: Node[]; edges: Edge[] } {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 24, ranksep: 56 });
  g.setDefaultEdgeLabel(() => ({}));
  const names = new Set(steps.map((s) => s.name));
  for (const s of steps) g.setNode(s.name, { width: W, height: height(s) });
  const edges: Edge[] = [];
  for (const s of steps) {
    for (const d of s.dependsOn) {
      if (!names.has(d)) continue;
      g.setEdge(d, s.name);
      edges.push({ id: `${d}->${s.name}`, source: d, target: s.name, markerEnd: { type: MarkerType.ArrowClosed }, animated: s.status === "running" });
    }
  }
  dagre.layout(g);
  const nodes: Node[] = steps.map((s) => {
    const p = g.node(s.name);
    return { id: s.name, type: "step", position: { x: p.x - W / 2, y: p.y - height(s) / 2 }, data: { ...s }, draggable: false };
  });
  return { nodes, edges };
}

function StepNode({ data, selected }: NodeProps) {
  const s = data as unknown as DagStep & { onSelect?: (n: string) => void };
  const c = statusColor[s.status ?? ""] ?? { fill: "var(--panel)", stroke: "#64748b" };
  return (
    <div
      className="rounded-md border-2 px-2 py-1.5 text-left text-xs shadow-sm"
      // Status fills are light in both themes: dark text on them; a step
      // without a status (a task's flow) is drawn on the panel colour.
      style={{ width: W, height: height(s), background: c.fill, color: statusColor[s.status ?? ""] ? "#0f172a" : "var(--fg)", borderColor: selected ? "#0ea5e9" : c.stroke }}
      data-step={s.name}
      data-status={s.status}
    >
      <Handle type="target" position={Position.Left} className="!opacity-0" />
      <div className="flex items-center gap-1 font-semibold">
        {s.kind === "approval" && <Hand className="h-3 w-3 shrink-0" aria-label="approval" />}
        {s.kind === "task" && <CornerDownRight className="h-3 w-3 shrink-0" aria-label="sub-job" />}
        <span className="truncate">
          {s.name}
          {s.instances ? ` ×${s.instances.length}` : ""}
        </span>
      </div>
      <div className="truncate opacity-80">
        {s.action}
        {s.status ? ` · ${s.status === "suspended" ? (s.kind === "task" ? "waiting for sub-job" : "waiting for approval") : s.status}` : ""}
      </div>
      {s.instances && <LoopStrip instances={s.instances} />}
      <Handle type="source" position={Position.Right} className="!opacity-0" />
    </div>
  );
}

/** One small square per loop instance, filled with its status's strong
 * colour so it stands out on the node (the
 * words are in the step list and the node's label). */
function LoopStrip({ instances }: { instances: { name: string; status: string }[] }) {
  const shown = instances.slice(0, MAX_SQUARES);
  return (
    <div className="mt-1 flex items-center gap-0.5" data-loop-instances={instances.length}>
      {shown.map((i) => {
        const c = statusColor[i.status] ?? { fill: "#fff", stroke: "#64748b" };
        return <span key={i.name} title={`${i.name} ${i.status}`} data-instance={i.name} data-status={i.status} className="h-2.5 w-2.5 shrink-0 rounded-sm border border-white/70" style={{ background: c.stroke }} />;
      })}
      {instances.length > shown.length && <span className="ml-0.5 text-[10px]">+{instances.length - shown.length}</span>}
    </div>
  );
}

const nodeTypes = { step: StepNode };

function useDarkClass(): boolean {
  const [dark, setDark] = useState(() => document.documentElement.classList.contains("dark"));
  useEffect(() => {
    const o = new MutationObserver(() => setDark(document.documentElement.classList.contains("dark")));
    o.observe(document.documentElement, { attributes: true, attributeFilter: ["class"] });
    return () => o.disconnect();
  }, []);
  return dark;
}

export default function Dag({ steps, onSelect, selected }: { steps: DagStep[]; onSelect?: (name: string) => void; selected?: string }) {
  const dark = useDarkClass();
  const { nodes, edges } = useMemo(() => layout(steps), [steps]);
  const withSel = useMemo(() => nodes.map((n) => ({ ...n, selected: n.id === selected })), [nodes, selected]);
  // From the keyboard: a step of a graph that selects is a tab stop
  // (ringed as every control) and Enter or Space selects it, as a click
  // does; arrows and edges are no tab stops (they did nothing, unringed).
  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>) => {
    if (!onSelect || (e.key !== "Enter" && e.key !== " ")) return;
    const id = (e.target as HTMLElement).closest(".react-flow__node")?.getAttribute("data-id");
    if (!id) return;
    e.preventDefault();
    onSelect(id);
  };
  return (
    <div
      className="h-72 w-full"
      role="group"
      aria-label={`Flow of ${steps.length} steps: ${steps.map((s) => `${s.name}${s.status ? " " + s.status : ""}`).join(", ")}`}
      onKeyDown={onKeyDown}
    >
      <ReactFlow
        nodes={withSel}
        edges={edges}
        nodeTypes={nodeTypes}
        fitView
        fitViewOptions={{ padding: 0.15, maxZoom: 1.2 }}
        nodesConnectable={false}
        nodesFocusable={!!onSelect}
        edgesFocusable={false}
        elementsSelectable={!!onSelect}
        onNodeClick={(_, n) => onSelect?.(n.id)}
        proOptions={{ hideAttribution: true }}
        colorMode={dark ? "dark" : "light"}
        minZoom={0.2}
      >
        <Background gap={16} size={1} />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}
