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

  it("drops escape sequences other than colours: titles, links, charsets", () => {
    // A window title (OSC 0, ended by BEL), a hyperlink (OSC 8, ended by
    // ST), a charset switch: none is text, with or without a colour code.
    const text = (t: string) => ansiSegments(t).map((s) => s.text).join("");
    expect(text("\u001b]0;build #4\u0007done")).toBe("done");
    expect(text("see \u001b]8;;http://example.com\u001b\\the docs\u001b]8;;\u001b\\ here")).toBe("see the docs here");
    expect(text("\u001b(Bplain")).toBe("plain");
    expect(text("\u001b]0;t\u0007\u001b[31mred\u001b[0m")).toBe("red");
    expect(ansiSegments("\u001b]0;t\u0007\u001b[31mred")[0].fg).toBe("var(--ansi-red)");
    expect(stripAnsi("\u001b]0;title\u0007a\u001b(Bb\u001b[2Kc")).toBe("abc");
  });
});
