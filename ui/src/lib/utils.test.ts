import { describe, expect, it } from "vitest";
import { durationBetween, formatDuration, sourceLabel } from "./utils";

describe("durationBetween", () => {
  it("a running step started by the server's clock a little ahead of the browser's is 0, not negative", () => {
    const now = Date.parse("2026-12-07T10:00:00.000Z");
    // The server stamped the start 3.2 s "in the future" of this browser.
    expect(formatDuration(durationBetween("2026-12-07T10:00:03.200Z", null, now))).toBe("0 ms");
    expect(formatDuration(durationBetween("2026-12-07T09:59:58.000Z", null, now))).toBe("2.0 s");
    // Both ends from the server: as they are.
    expect(durationBetween("2026-12-07T10:00:00.000Z", "2026-12-07T10:00:01.500Z", now)).toBe(1500);
  });
});

describe("sourceLabel", () => {
  const parent = "7f1c9a52-3b1e-4c8a-9d2f-0123456789ab";
  it("shortens the job ids a sub-job's and a hook's source names, and keeps the rest", () => {
    expect(sourceLabel({ source_type: "task", source_id: `${parent}/deploy[2]` })).toBe("task: 7f1c9a52/deploy[2]");
    expect(sourceLabel({ source_type: "task", source_id: `${parent}/a/b` })).toBe("task: 7f1c9a52/a/b");
    expect(sourceLabel({ source_type: "task", source_id: parent })).toBe("task: 7f1c9a52"); // stored before migration 00241
    expect(sourceLabel({ source_type: "hook", source_id: parent })).toBe("hook: 7f1c9a52");
    expect(sourceLabel({ source_type: "trigger", source_id: "default/nightly" })).toBe("trigger: default/nightly");
    expect(sourceLabel({ source_type: "api", source_id: null })).toBe("api");
    expect(sourceLabel({ source_type: "task", source_id: "not-a-uuid/x" })).toBe("task: not-a-uuid/x");
  });
});
