// text-width.ts: how wide a line of text is in Helvetica (and in Arial and Liberation Sans,
// which share its metrics), for vega's layout when no canvas is there to measure with.
// Without one vega guesses 0.8 em per character, which is about half again too wide: titles
// push panels apart and legend labels get cut short for no reason.

/** The font stack to draw with, so that the browser picks a face with these metrics. */
export const FONT = "Helvetica, Arial, 'Liberation Sans', sans-serif";

// Advance widths in 1/1000 em of Helvetica's printable ASCII, " " (32) to "~" (126), from its AFM.
const ASCII = [
  278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // space to /
  556, 556, 556, 556, 556, 556, 556, 556, 556, 556, // 0-9
  278, 278, 584, 584, 584, 556, 1015, // : to @
  667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, // A-Z
  278, 278, 278, 469, 556, 333, // [ to `
  556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, // a-z
  334, 260, 334, 584, // { to ~
];
const OTHER: Record<string, number> = { "µ": 556, "×": 584, "–": 556, "—": 1000, "…": 1000, "≤": 549, "≥": 549, "·": 278 };
/** Bold Helvetica runs about this much wider than regular. */
const BOLD = 1.08;

/** The width in px of one line of text at fontSize px, bold or not, in Helvetica's metrics. */
export function textWidth(text: string, fontSize: number, bold = false): number {
  let units = 0;
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    units += code >= 32 && code <= 126 ? ASCII[code - 32]! : (OTHER[ch] ?? 556);
  }
  return (units / 1000) * fontSize * (bold ? BOLD : 1);
}

/** What vega's text items carry that the width depends on. */
export interface TextItem {
  fontSize?: number;
  fontWeight?: string | number;
  limit?: number;
}

/**
 * A width function for vega's textMetrics.width: one line of an item, capped at the item's
 * `limit` (vega truncates such a line with an ellipsis to fit it).
 */
export function vegaTextWidth(item: TextItem, line: unknown): number {
  const text = line == null ? "" : String(line).trim();
  const size = item.fontSize ?? 11;
  const weight = item.fontWeight;
  const bold = weight === "bold" || weight === "bolder" || (typeof weight === "number" && weight >= 600) || (typeof weight === "string" && Number(weight) >= 600);
  const w = textWidth(text, size, bold);
  return item.limit !== undefined && item.limit > 0 ? Math.min(w, item.limit) : w;
}
