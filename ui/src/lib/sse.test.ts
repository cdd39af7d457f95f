import { describe, expect, it } from "vitest";
import { SSEParser } from "./sse";

describe("SSEParser", () => {
  it("parses events split across chunks, with ids, names and comments", () => {
    const p = new SSEParser();
    expect(p.push("id: 1\ndata: {\"seq\":1}\n")).toEqual([]);
    expect(p.push("\n: keep-alive\n\nid: 2\r\ndata: a\r\ndata: b\r\n\r\nevent: done\ndata: {\"status\":\"failed\"}\n\n")).toEqual([
      { id: "1", event: "message", data: '{"seq":1}' },
      { id: "2", event: "message", data: "a\nb" },
      { id: "2", event: "done", data: '{"status":"failed"}' },
    ]);
  });

  it("keeps a CRLF split across chunks as one line break", () => {
    const p = new SSEParser();
    expect(p.push("data: x\r")).toEqual([]);
    expect(p.push("\n\r\n")).toEqual([{ id: undefined, event: "message", data: "x" }]);
  });

  it("handles a burst of thousands of events in one chunk", () => {
    const p = new SSEParser();
    const chunk = Array.from({ length: 5000 }, (_, i) => `id: ${i + 1}\ndata: line ${i + 1}\n\n`).join("");
    const evs = p.push(chunk);
    expect(evs).toHaveLength(5000);
    expect(evs[4999]).toEqual({ id: "5000", event: "message", data: "line 5000" });
  });
});
