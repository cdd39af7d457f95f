import Anser from "anser";

export interface Segment {
  text: string;
  fg?: string;
  bg?: string;
  bold?: boolean;
  italic?: boolean;
  underline?: boolean;
}

const hasEscape = /\u001b\[/;

/** Splits a log line into styled segments by its ANSI SGR codes; other
 * escape sequences are dropped. Plain lines skip the parser. */
export function ansiSegments(text: string): Segment[] {
  if (!hasEscape.test(text)) return [{ text }];
  return Anser.ansiToJson(text, { remove_empty: true, use_classes: false }).map((e) => ({
    text: e.content,
    fg: e.fg ? `rgb(${e.fg})` : undefined,
    bg: e.bg ? `rgb(${e.bg})` : undefined,
    bold: e.decorations?.includes("bold"),
    italic: e.decorations?.includes("italic"),
    underline: e.decorations?.includes("underline"),
  }));
}

/** The text without escape sequences (for search and download). */
export function stripAnsi(text: string): string {
  return hasEscape.test(text) ? Anser.ansiToText(text) : text;
}
