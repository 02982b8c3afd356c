// config-file.ts: --config FILE: a JSON object whose keys are the long flags ("port",
// "max-conns", "route": [...]), the keys the flag table allows (flag-table.ts fileSpec()).
// Flags given on the command line override it.
import * as fs from "node:fs";

import { ConfigError } from "../errors";

import type { ArgSpec, ArgValues } from "./flag-table";

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length][b.length];
}

export function closest(key: string, known: string[]): string {
  return known.reduce((best, k) => (distance(key, k) < distance(key, best) ? k : best), known[0]);
}

/**
 * Reads FILE against `spec` (the keys a file may hold, by flag name) into values shaped like
 * parseArgs' (strings, booleans, string lists). Every problem is one ConfigError naming the file:
 * unreadable, not one JSON object, an unknown key (with the closest known one), a wrong type.
 */
export function readConfigFile(file: string, spec: Record<string, ArgSpec>): ArgValues {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === "ENOENT"
        ? "no such file"
        : e.code === "EISDIR"
          ? "is a directory; give the JSON file itself, e.g. --config vw.json"
          : e.code === "EACCES"
            ? "permission denied; make it readable by this user"
            : err instanceof SyntaxError
              ? `not valid JSON (${e.message})`
              : e.message;
    throw new ConfigError(`--config ${file}: ${why}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`--config ${file}: must hold one JSON object, e.g. {"port": 8085}`);
  }
  const known = Object.keys(spec);
  const out: ArgValues = {};
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    const s = Object.hasOwn(spec, key) ? spec[key] : undefined;
    if (!s) {
      throw new ConfigError(`--config ${file}: unknown key "${key}"; did you mean "${closest(key, known)}"?`);
    }
    const bad = (want: string): never => {
      throw new ConfigError(`--config ${file}: "${key}" must be ${want}`);
    };
    const scalar = (v: unknown): string =>
      typeof v === "string" ? v : typeof v === "number" ? String(v) : bad(s.multiple ? "a list of strings or numbers" : "a string or a number");
    if (s.type === "boolean") {
      if (typeof value !== "boolean") bad("true or false");
      out[key] = value as boolean;
    } else if (s.multiple) {
      out[key] = Array.isArray(value) ? value.map(scalar) : [scalar(value)];
    } else {
      out[key] = scalar(value);
    }
  }
  return out;
}
