// errors.ts: the two kinds of failure the launcher reports in one line: bad configuration
// (exit 2) and a system refusal at start (exit 1); errno names.
import * as os from "node:os";

export class ConfigError extends Error {
  override name = "ConfigError";
}

export class StartError extends Error {
  override name = "StartError";
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

const errnoNames = new Map<number, string>();
for (const [name, n] of Object.entries(os.constants.errno)) if (!errnoNames.has(n)) errnoNames.set(n, name);

/** An errno's name from Node's table (1 → "EPERM"), or "errno N" for a number it does not name. */
export function errnoName(n: number): string {
  return errnoNames.get(n) ?? `errno ${n}`;
}
