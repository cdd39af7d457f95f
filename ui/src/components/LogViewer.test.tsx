import { act, render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeAll, describe, expect, it, vi } from "vitest";
import type { LogStreamHandlers } from "@/lib/sse";
import type { LogLine } from "@/lib/types";

let handlers: LogStreamHandlers | undefined;
const calls: (string | undefined)[] = [];
vi.mock("@/lib/sse", () => ({
  followLogs: (_job: string, step: string | undefined, h: LogStreamHandlers) => {
    handlers = h;
    calls.push(step);
    h.onState?.("open");
    return new Promise(() => {});
  },
}));

const { LogViewer } = await import("./LogViewer");

beforeAll(() => {
  // jsdom lays nothing out: give the scroller a size so rows are virtualised into view.
  Object.defineProperty(HTMLElement.prototype, "offsetHeight", { configurable: true, get: () => 400 });
  Object.defineProperty(HTMLElement.prototype, "offsetWidth", { configurable: true, get: () => 800 });
  Object.defineProperty(HTMLElement.prototype, "clientHeight", { configurable: true, get: () => 400 });
  HTMLElement.prototype.scrollTo = function () {};
  HTMLElement.prototype.getBoundingClientRect = function () {
    return { x: 0, y: 0, top: 0, left: 0, bottom: 400, right: 800, width: 800, height: 400, toJSON() {} } as DOMRect;
  };
});

const line = (seq: number, text: string, stream: LogLine["stream"] = "stdout", step = "build"): LogLine => ({
  seq,
  step,
  attempt: 1,
  ts: "2026-12-06T08:00:00Z",
  stream,
  text,
});

describe("LogViewer", () => {
  it("shows streamed lines with ANSI colours, marks stderr, searches, and ends with the job", async () => {
    render(<LogViewer jobId="j1" steps={["build", "test"]} />);
    expect(screen.getByText("Waiting for output…")).toBeInTheDocument();
    await act(async () => {
      handlers!.onLines([line(1, "\u001b[32mcompiled\u001b[0m ok"), line(2, "warning: slow disk", "stderr"), line(3, "done", "stdout", "test")]);
      await new Promise((r) => requestAnimationFrame(() => r(null)));
    });
    expect(screen.getByTestId("log-state")).toHaveTextContent("3 lines · live");
    const green = screen.getByText("compiled");
    expect(green.getAttribute("style")).toMatch(/color: var\(--ansi-green\)/);
    const err = screen.getByText("warning: slow disk").closest("[data-stream]");
    expect(err).toHaveAttribute("data-stream", "stderr");
    expect(err).toHaveTextContent("ERR");

    await userEvent.type(screen.getByRole("searchbox", { name: "Search the log" }), "DISK");
    expect(screen.getByTestId("log-state")).toHaveTextContent("1 of 3 lines");
    expect(screen.queryByText("done")).not.toBeInTheDocument();
    expect(screen.getByText("disk").tagName).toBe("MARK");

    await act(async () => handlers!.onDone("failed"));
    expect(screen.getByTestId("log-state")).toHaveTextContent("stream ended (failed)");
  });

  it("counts one line in the singular", async () => {
    render(<LogViewer jobId="j3" steps={["build"]} />);
    await act(async () => {
      handlers!.onLines([line(1, "only")]);
      await new Promise((r) => requestAnimationFrame(() => r(null)));
    });
    expect(screen.getByTestId("log-state")).toHaveTextContent("1 line · live");
    await userEvent.type(screen.getByRole("searchbox", { name: "Search the log" }), "only");
    expect(screen.getByTestId("log-state")).toHaveTextContent("1 of 1 line ·");
  });

  it("follows one step when chosen, and pauses", async () => {
    calls.length = 0;
    render(<LogViewer jobId="j2" steps={["build", "test"]} />);
    await userEvent.selectOptions(screen.getByRole("combobox", { name: "Step" }), "test");
    expect(calls).toEqual([undefined, "test"]);
    const pause = screen.getByRole("button", { name: "Pause" });
    expect(pause).toHaveAttribute("aria-pressed", "true");
    await userEvent.click(pause);
    expect(screen.getByRole("button", { name: "Follow" })).toHaveAttribute("aria-pressed", "false");
  });
  it("shows a for_each loop's lines, its instances', when the loop step is chosen (the loop step itself prints none)", async () => {
    calls.length = 0;
    render(<LogViewer jobId="j4" steps={["fetch", "per", "per[0]", "per[1]", "performance"]} initialStep="per" />);
    // All steps are streamed; the loop's instances are kept.
    expect(calls).toEqual([undefined]);
    await act(async () => {
      handlers!.onLines([line(1, "fetching", "stdout", "fetch"), line(2, "item a", "stdout", "per[0]"), line(3, "item b", "stdout", "per[1]"), line(4, "bench", "stdout", "performance")]);
      await new Promise((r) => requestAnimationFrame(() => r(null)));
    });
    expect(screen.getByTestId("log-state")).toHaveTextContent("2 lines · live");
    expect(screen.getByText("item a")).toBeInTheDocument();
    expect(screen.getByText("item b").closest("[data-seq]")).toHaveTextContent("per[1]"); // which instance printed it
    expect(screen.queryByText("fetching")).toBeNull();
    expect(screen.queryByText("bench")).toBeNull();
    // One instance: its own stream, as any step.
    await userEvent.selectOptions(screen.getByRole("combobox", { name: "Step" }), "per[1]");
    expect(calls).toEqual([undefined, "per[1]"]);
  });
});
