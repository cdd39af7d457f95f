import Anser from "anser";

export interface Segment {
  text: string;
  fg?: string;
  bg?: string;
  bold?: boolean;
  italic?: boolean;
  underline?: boolean;
}

const hasEscape = /\u001b/;
const hasCSI = /\u001b\[/;
// Escape sequences that are not CSI (which anser reads, keeping SGR
// colours and dropping the rest): OSC (a window title, a hyperlink) up to
// BEL or ST, DCS/SOS/PM/APC strings up to ST, character set designations
// (ESC ( B) and the other two-byte escapes (ESC 7, ESC =…). They are not
// text; anser leaves them in, so they are removed first.
const otherEscape = /\u001b(?:\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|[PX^_][^\u001b]*(?:\u001b\\)?|[\u0020-\u002f]+[\u0030-\u007e]?|(?!\[)[\s\S]?)/g;

// The 16 standard colours (as anser reports them) are drawn with the
// theme's own palette (--ansi-* in index.css), chosen for at least 4.5:1
// against the log's background in light and dark mode: the terminal
// palette's green on white is 2.5:1. Other colours (256, true colour) are
// kept as the program sent them.
const names = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"];
const palette = new Map<string, string>();
const std = ["0,0,0", "187,0,0", "0,187,0", "187,187,0", "0,0,187", "187,0,187", "0,187,187", "255,255,255"];
const bright = ["85,85,85", "255,85,85", "0,255,0", "255,255,85", "85,85,255", "255,85,255", "85,255,255", "255,255,255"];
names.forEach((n, i) => {
  palette.set(std[i], `var(--ansi-${n})`);
  if (!palette.has(bright[i])) palette.set(bright[i], `var(--ansi-bright-${n})`);
});

/** The CSS colour of an ANSI foreground ("r, g, b" from anser). */
export function ansiColor(rgb: string): string {
  return palette.get(rgb.replace(/\s+/g, "")) ?? `rgb(${rgb})`;
}

/** Splits a log line into styled segments by its ANSI SGR codes; other
 * escape sequences are dropped. Plain lines skip the parser. */
export function ansiSegments(text: string): Segment[] {
  if (!hasEscape.test(text)) return [{ text }];
  text = text.replace(otherEscape, "");
  if (!hasCSI.test(text)) return [{ text }];
  return Anser.ansiToJson(text, { remove_empty: true, use_classes: false }).map((e) => ({
    text: e.content,
    fg: e.fg ? ansiColor(e.fg) : undefined,
    bg: e.bg ? `rgb(${e.bg})` : undefined,
    bold: e.decorations?.includes("bold"),
    italic: e.decorations?.includes("italic"),
    underline: e.decorations?.includes("underline"),
  }));
}

/** The text without escape sequences (for search and download). */
export function stripAnsi(text: string): string {
  if (!hasEscape.test(text)) return text;
  text = text.replace(otherEscape, "");
  return hasCSI.test(text) ? Anser.ansiToText(text) : text;
}
