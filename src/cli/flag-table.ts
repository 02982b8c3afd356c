// flag-table.ts: what is derived from the flag table (flags.ts): the names a flag carries in
// each language, the parseArgs spec, the --help lines, the --config keys, the typed values with
// their defaults, and the fields the addon reads. Nothing here names a particular flag.
import { FLAGS, type FlagDef, type FlagKey, type Flags } from "./flags";
import type { Raw } from "./flag-values";

type Camel<S extends string> = S extends `${infer H}-${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;
type Snake<S extends string> = S extends `${infer H}-${infer T}` ? `${H}_${Snake<T>}` : S;
/** The key with its unit: "idle-timeout" + ms → "idle-timeout-ms". */
type Named<K extends string, F> = F extends { unit: infer U extends string } ? `${K}-${U}` : K;
type Parsed<F> = F extends { parse: (raw: Raw, flag: string) => infer T } ? T : string;
type ValueOf<F> = F extends { list: true } ? Parsed<F>[] : F extends { arg: string } ? (F extends { def: Raw } ? Parsed<F> : Parsed<F> | undefined) : boolean;
type InputOf<F> = F extends { list: true } ? Raw[] : F extends { arg: string } ? Raw : boolean;

/**
 * What a caller of the API may set, unchecked: each flag by the camelCase of its key
 * (`idleTimeout: 60`, seconds as on the command line; `keepalive: false` for --no-keepalive).
 */
export type Options = { [K in FlagKey as Camel<K>]?: InputOf<Flags[K]> };

/**
 * Every flag's checked value, defaults applied, by the camelCase of its key and unit
 * (`idleTimeoutMs`, `deferAcceptS`); lists are arrays, switches booleans.
 */
export type FlagValues = { [K in FlagKey as Camel<Named<K, Flags[K]>>]: ValueOf<Flags[K]> };

/** The values the addon reads (`native: true`), by the snake_case of key and unit (`idle_timeout_ms`). */
export type NativeFlagValues = { [K in FlagKey as Flags[K] extends { native: true } ? Snake<Named<K, Flags[K]>> : never]: ValueOf<Flags[K]> };

/** The flag entries in table order, typed loosely for the generic code below. */
export const flagEntries = Object.entries(FLAGS) as [FlagKey, FlagDef][];

const camel = (s: string): string => s.replace(/-(\w)/g, (_, c: string) => c.toUpperCase());
const snake = (s: string): string => s.replace(/-/g, "_");
const named = (k: string, f: FlagDef): string => (f.unit ? `${k}-${f.unit}` : k);

/** "keepalive" → "no-keepalive" (an `off` switch), else the key: the flag and --config key. */
export function cliName(k: FlagKey): string {
  return (FLAGS[k] as FlagDef).off ? `no-${k}` : k;
}
/** "idle-timeout" → "idleTimeoutMs": the key of its value in `FlagValues` and `Config`. */
export function valueName(k: FlagKey): string {
  return camel(named(k, FLAGS[k]));
}
/** "idle-timeout" → "idle_timeout_ms": the field in native/worker/config.h (for `native` entries). */
export function nativeName(k: FlagKey): string {
  return snake(named(k, FLAGS[k]));
}

/** One parseArgs option. */
export interface ArgSpec {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
}

/** The parseArgs options for `keys` (default: every flag), by flag name. */
export function argSpec(keys: readonly FlagKey[] = flagEntries.map(([k]) => k)): Record<string, ArgSpec> {
  const out: Record<string, ArgSpec> = {};
  for (const k of keys) {
    const f: FlagDef = FLAGS[k];
    out[cliName(k)] = { type: f.arg ? "string" : "boolean", ...(f.short && { short: f.short }), ...(f.list && { multiple: true }) };
  }
  return out;
}

/** The keys a --config file may hold: every flag name but those marked `file: false`. */
export function fileSpec(): Record<string, ArgSpec> {
  return argSpec(flagEntries.filter(([, f]) => f.file !== false).map(([k]) => k));
}

/** What parseArgs (or a --config file) produced, by flag name. */
export type ArgValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** parseArgs values (flag names) → Options (camelCase keys); `--no-X` given → `x: false`. */
export function optionsFromArgs(v: ArgValues): Options {
  const out: Record<string, unknown> = {};
  for (const [k, f] of flagEntries) {
    const given = v[cliName(k)];
    if (given === undefined) continue;
    if (f.off) {
      if (given === true) out[camel(k)] = false;
    } else out[camel(k)] = given;
  }
  return out as Options;
}

/** How --help shows a flag's default, or undefined when it has none. */
export function shownDefault(f: FlagDef): string | undefined {
  return f.show ?? (f.def === undefined ? undefined : String(f.def));
}

/**
 * Options → every flag's checked value with defaults applied. Throws ConfigError (from the
 * entry's `parse`) for the first bad value, naming the flag as the user writes it.
 */
export function flagValues(o: Options): FlagValues {
  const given = o as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, f] of flagEntries) {
    const raw = given[camel(k)];
    const parse = (r: Raw): unknown => (f.parse ? f.parse(r, `--${k}`) : String(r));
    let value: unknown;
    if (!f.arg) value = f.off ? raw !== false : raw === true;
    else if (f.list) value = raw === undefined ? [] : (raw as Raw[]).map(parse);
    else if (raw !== undefined) value = parse(raw as Raw);
    else value = f.def === undefined ? undefined : parse(f.def);
    out[valueName(k)] = value;
  }
  return out as FlagValues;
}

/** The fields of `values` the addon reads, renamed to native/worker/config.h's names. */
export function nativeValues(values: Record<string, unknown>): NativeFlagValues {
  const out: Record<string, unknown> = {};
  for (const [k, f] of flagEntries) if (f.native) out[nativeName(k)] = values[valueName(k)];
  return out as NativeFlagValues;
}

const HELP_COLUMN = 27;
const HELP_WIDTH = 80;

function wrap(words: string[], width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const w of words) {
    if (line && line.length + 1 + w.length > width) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines;
}

/**
 * The --help lines for `keys` (default: every flag): the flag and its argument, then its help,
 * "(repeatable)" for lists and "(default X)" from the table, wrapped within 80 columns.
 */
export function helpLines(keys: readonly FlagKey[] = flagEntries.map(([k]) => k), overrides: Partial<Record<FlagKey, string>> = {}): string {
  const out: string[] = [];
  for (const k of keys) {
    const f: FlagDef = FLAGS[k];
    const left = `  ${f.short ? `-${f.short}, ` : "    "}--${cliName(k)}${f.arg ? ` ${f.arg}` : ""}`;
    const shown = shownDefault(f);
    // "(default X)" stays whole on one line.
    const words = [...`${overrides[k] ?? f.help}${f.list ? " (repeatable)" : ""}`.split(" "), ...(shown === undefined ? [] : [`(default ${shown})`])];
    const lines = wrap(words, HELP_WIDTH - HELP_COLUMN);
    const pad = " ".repeat(HELP_COLUMN);
    if (left.length > HELP_COLUMN - 2) out.push(left);
    else out.push(left.padEnd(HELP_COLUMN) + (lines.shift() ?? ""));
    for (const l of lines) out.push(pad + l);
  }
  return out.join("\n");
}
