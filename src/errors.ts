// errors.ts: the two kinds of failure the launcher reports in one line: bad configuration
// (exit 2) and a system refusal at start (exit 1).
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
