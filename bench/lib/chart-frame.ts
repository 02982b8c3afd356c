// chart-frame.ts: what the single-panel result charts (engines.svg, proxy.svg) share around
// their data: the title with a two-line subtitle, the white background, the font and the axes'
// style, so that they read as one set.
import { FONT } from "./text-width";

/**
 * The top-level properties of a one-panel chart: `title` over `subtitle` lines (what ran, how
 * often, what the marks mean), a `width` × `height` px plot. Spread into a Vega-Lite spec.
 */
export function chartFrame(title: string, subtitle: string[], width: number, height: number) {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: title, subtitle, anchor: "start" as const, fontSize: 15, subtitleFontSize: 11, subtitleColor: "#444", offset: 14 },
    background: "white",
    padding: 12,
    width,
    height,
    config: { font: FONT, axis: { labelFontSize: 11, gridColor: "#e9ecef" }, view: { stroke: null } },
  };
}

/** "5 rounds × 8 s (+2 s warm-up)": how long each subject ran. */
export function roundsLine(rounds: number, durationSec: number, warmupSec: number): string {
  return `${rounds} round${rounds === 1 ? "" : "s"} × ${durationSec} s (+${warmupSec} s warm-up)`;
}
