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
});
