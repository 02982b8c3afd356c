// scenarios.ts: the load shapes. Every one asks for /1b (vw's 1-byte body; the
// peers answer any path) on 127.0.0.1 only.
export interface Scenario {
  readonly id: string;
  readonly title: string;
  readonly tool: "wrk" | "weighttp";
  readonly connections: number;
  readonly keepAlive: boolean;
  /** requests per write (1 = no pipelining) */
  readonly pipeline: number;
}

export const URL_PATH = "/1b";

export const ALL_SCENARIOS: readonly Scenario[] = [
  { id: "ka100", title: "keep-alive, 100 connections", tool: "wrk", connections: 100, keepAlive: true, pipeline: 1 },
  { id: "ka300", title: "keep-alive, 300 connections", tool: "wrk", connections: 300, keepAlive: true, pipeline: 1 },
  { id: "close50", title: "no keep-alive (Connection: close), 50 connections", tool: "wrk", connections: 50, keepAlive: false, pipeline: 1 },
  { id: "pipe16", title: "keep-alive, 16 pipelined requests per write, 100 connections", tool: "wrk", connections: 100, keepAlive: true, pipeline: 16 },
  { id: "weighttp", title: "weighttp keep-alive, 300 connections", tool: "weighttp", connections: 300, keepAlive: true, pipeline: 1 },
];

/** The scenario the SVG chart shows. */
export const CHART_SCENARIO = "ka100";
