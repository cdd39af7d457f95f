import { describe, expect, it } from "vitest";
import { durationBetween, formatDuration } from "./utils";

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
