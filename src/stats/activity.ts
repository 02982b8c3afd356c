// activity.ts: when requests were actually served: the time of the first request vw answered and
// of the last, so req/s at exit divides by the time a client was being served, not by uptime (a
// wrk run of 2 s inside 5 s of uptime is 2 s of work). The Node thread reads the workers' request
// counters from the shared stats block (no system call but its timer) every POLL_ACTIVE_MS while
// requests flow, every POLL_IDLE_MS while none do; each end of the window is then known to a
// poll period, and the start is refined by the rate of the poll after it.

/** Polling periods, ms: fine while requests flow, coarse while idle. */
export const POLL_ACTIVE_MS = 10;
export const POLL_IDLE_MS = 100;
/** Without a new request for this long, the poller slows to POLL_IDLE_MS. */
const IDLE_AFTER_MS = 50;

/** The window, in performance.now() milliseconds. */
export interface Window {
  firstMs: number;
  lastMs: number;
}

export class ActivityWindow {
  private lastCount: number;
  private lastPollMs: number;
  private lastSeenMs: number | undefined;
  private firstMs: number | undefined;
  /** The poll that saw the first requests, until the next poll gives the rate to place them. */
  private pending: { prevMs: number; atMs: number; delta: number } | undefined;
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param read total requests answered so far, all workers (a cumulative counter)
   * @param now monotonic milliseconds (performance.now by default)
   */
  constructor(
    private readonly read: () => number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.lastCount = read();
    this.lastPollMs = now();
  }

  /** Starts polling on an unref'd timer (it never keeps Node alive). */
  start(): this {
    const tick = (): void => {
      this.poll();
      const busy = this.lastSeenMs !== undefined && this.now() - this.lastSeenMs < IDLE_AFTER_MS;
      this.timer = setTimeout(tick, busy ? POLL_ACTIVE_MS : POLL_IDLE_MS);
      this.timer.unref();
    };
    this.timer = setTimeout(tick, POLL_IDLE_MS);
    this.timer.unref();
    return this;
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  /** Reads the counter now (the timer calls it; call it once more at exit to close the window). */
  poll(): void {
    const at = this.now();
    const count = this.read();
    const delta = count - this.lastCount;
    if (this.pending) {
      // The poll after the first requests: at this rate they took delta/rate before `atMs`.
      const p = this.pending;
      this.pending = undefined;
      if (delta > 0) {
        const perMs = delta / Math.max(at - this.lastPollMs, 1e-3);
        this.firstMs = Math.max(p.prevMs, p.atMs - p.delta / perMs);
      } else {
        this.firstMs = (p.prevMs + p.atMs) / 2; // a burst shorter than one poll: its middle
      }
    }
    if (delta > 0) {
      if (this.firstMs === undefined) {
        this.firstMs = at; // provisional, until the next poll gives the rate
        this.pending = { prevMs: this.lastPollMs, atMs: at, delta };
      }
      this.lastSeenMs = at;
    }
    this.lastCount = count;
    this.lastPollMs = at;
  }

  /** First and last request as known now, or undefined before any request. */
  window(): Window | undefined {
    if (this.firstMs === undefined || this.lastSeenMs === undefined) return undefined;
    return { firstMs: Math.min(this.firstMs, this.lastSeenMs), lastMs: this.lastSeenMs };
  }

  /** Seconds from the first request to the last (0 with one poll's worth), or null before any. */
  activeSeconds(): number | null {
    const w = this.window();
    return w ? (w.lastMs - w.firstMs) / 1000 : null;
  }
}

/**
 * req/s over the active window; falls back to `uptimeS` when the window is too short to mean
 * anything (under two poll periods, or fewer than two requests).
 */
export function activeRate(requests: number, activeS: number | null, uptimeS: number): { seconds: number; rps: number } {
  if (activeS !== null && requests >= 2 && activeS >= (2 * POLL_ACTIVE_MS) / 1000) return { seconds: activeS, rps: requests / activeS };
  return { seconds: uptimeS, rps: uptimeS > 0 ? requests / uptimeS : 0 };
}
