// args.ts: command-line flags of `npm run bench` (node dist/bench/load.js).
export interface BenchArgs {
  rounds: number;
  durationSec: number;
  warmupSec: number;
  scenarios: string[] | null; // null: all available
  servers: string[] | null; // without --servers: DEFAULT_SERVERS
  /** true when neither --rounds nor --duration nor --quick was given: defaults may shrink to fit the time budget */
  defaults: boolean;
  perf: boolean;
  outDir: string | null;
}

/** The servers run when --servers is not given; vw-live (vw with its live view on) is opt-in. */
export const DEFAULT_SERVERS: readonly string[] = ["vw", "floor", "node", "nginx", "h2o"];

export const USAGE = `usage: npm run bench -- [flags]
  --rounds R          measured rounds, servers interleaved per round (default 5)
  --duration S        seconds measured per run, whole seconds (default 3)
  --warmup S          seconds of warm-up load per run (default 1)
  --scenarios a,b     subset of: ka100,ka300,close50,pipe16,weighttp
  --servers a,b       subset of: vw,floor,node,nginx,h2o (default), vw-live (opt-in)
  --quick             1 round, 2 s (smoke test)
  --no-perf           skip the 1 s perf stat window (syscalls/ctx switches become n/a)
  --out DIR           where latest.json/latest.svg go (default bench/results)`;

export function parseArgs(argv: readonly string[]): BenchArgs {
  const a: BenchArgs = {
    rounds: 5,
    durationSec: 3,
    warmupSec: 1,
    scenarios: null,
    servers: null,
    defaults: true,
    perf: true,
    outDir: null,
  };
  const num = (flag: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < min) throw new Error(`${flag} needs a number >= ${min}`);
    return n;
  };
  const list = (flag: string, v: string | undefined): string[] => {
    if (v === undefined || v === "") throw new Error(`${flag} needs a comma-separated list`);
    return v.split(",").map((s) => s.trim()).filter(Boolean);
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split("=", 2) as [string, string | undefined];
    const val = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case "--rounds":
        a.rounds = Math.floor(num(flag, val(), 1));
        a.defaults = false;
        break;
      case "--duration":
        a.durationSec = Math.floor(num(flag, val(), 1)); // wrk takes whole seconds
        a.defaults = false;
        break;
      case "--warmup":
        a.warmupSec = Math.floor(num(flag, val(), 0));
        break;
      case "--scenarios":
        a.scenarios = list(flag, val());
        break;
      case "--servers":
        a.servers = list(flag, val());
        break;
      case "--quick":
        a.rounds = 1;
        a.durationSec = 2;
        a.defaults = false;
        break;
      case "--no-perf":
        a.perf = false;
        break;
      case "--out":
        a.outDir = val() ?? null;
        break;
      case "-h":
      case "--help":
        throw new Error(USAGE);
      default:
        throw new Error(`unknown flag ${flag}\n${USAGE}`);
    }
  }
  a.servers ??= [...DEFAULT_SERVERS];
  return a;
}
