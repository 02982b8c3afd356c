// vega-svg.ts: a Vega-Lite spec rendered to an SVG string in Node, headless (no browser, no
// canvas): vega-lite compiles the spec to Vega, vega renders it with view.toSVG().
//
// Both packages are ES modules only and this project compiles to CommonJS, where TypeScript
// turns `import()` into `require()`. So they are loaded with a real dynamic import, by file
// URL, which works on every Node 20 (require() of an ES module needs 20.19 and warns).
import { pathToFileURL } from "node:url";
// vega-lite declares its types under "exports" only, which this project's resolution
// ("node") does not read: name the declaration file itself (a type-only import, erased).
import type { TopLevelSpec } from "vega-lite/build/index";
import { vegaTextWidth, type TextItem } from "./text-width";

export type { TopLevelSpec };

// The little of vega used here. Its own typings need the DOM library (Element, MouseEvent),
// which this Node project does not compile with.
interface VegaView {
  toSVG(): Promise<string>;
  finalize(): void;
}
interface Vega {
  parse(spec: unknown): unknown;
  View: new (runtime: unknown, options: { renderer: "none"; logLevel?: number }) => VegaView;
  Warn: number;
  /** vega's text measurer: `width` may be replaced (vl-convert does so too). */
  textMetrics: { width: (item: TextItem, text: unknown) => number };
}
interface VegaLite {
  compile(spec: TopLevelSpec): { spec: unknown };
}

// A dynamic import that TypeScript leaves alone when compiling to CommonJS.
const dynamicImport = new Function("url", "return import(url)") as (url: string) => Promise<unknown>;

let libs: Promise<{ vega: Vega; vl: VegaLite }> | null = null;

/** vega and vega-lite, loaded once. */
function load(): Promise<{ vega: Vega; vl: VegaLite }> {
  libs ??= Promise.all([
    dynamicImport(pathToFileURL(require.resolve("vega")).href),
    dynamicImport(pathToFileURL(require.resolve("vega-lite")).href),
  ]).then(([v, vl]) => {
    const vega = v as Vega;
    // No canvas in Node: measure text with Helvetica's metrics instead of vega's rough guess.
    vega.textMetrics.width = vegaTextWidth;
    return { vega, vl: vl as VegaLite };
  });
  return libs;
}

/**
 * Renders a Vega-Lite spec to a standalone SVG document (with an XML declaration and a
 * trailing newline), as a file under bench/results wants it.
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const { vega, vl } = await load();
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none", logLevel: vega.Warn });
  try {
    const svg = await view.toSVG();
    return `<?xml version="1.0" encoding="UTF-8"?>\n${svg}\n`;
  } finally {
    view.finalize();
  }
}
