import { describe, expect, it } from "vitest";
import { ansiSegments, stripAnsi } from "./ansi";

describe("ansi", () => {
  it("styles SGR colours and leaves plain text alone", () => {
    expect(ansiSegments("plain")).toEqual([{ text: "plain" }]);
    const s = ansiSegments("\u001b[1;31mred\u001b[0m rest");
    expect(s[0].text).toBe("red");
    expect(s[0].fg).toBe("var(--ansi-red)");
    expect(s[0].bold).toBe(true);
    expect(s[1]).toMatchObject({ text: " rest", fg: undefined });
    expect(stripAnsi("\u001b[32mok\u001b[0m")).toBe("ok");
    // The 16 standard colours use the theme's readable palette; others stay.
    expect(ansiSegments("\u001b[92mx")[0].fg).toBe("var(--ansi-bright-green)");
    expect(ansiSegments("\u001b[38;2;1;2;3mx")[0].fg).toBe("rgb(1, 2, 3)");
  });
});
