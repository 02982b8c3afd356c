// The live view and the summary fit an 80-column terminal whatever the figures: the widest
// numbers a worker can produce, -v included. (The real process is checked in stats.test.ts.)
import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { LEGEND, LiveView, VIEW_WIDTH, summary } from "../src/stats/render";
import type { Interval, ProxyInterval, WorkerInterval } from "../src/stats/sampler";

const worker: WorkerInterval = {
  id: 127, cpu: 255, tid: 4194304, requests: 98765432, rps: 9876543, conns: 16777216, accepted: 9999999, bytes_out: 9e12,
  syscalls: { total: 3e9, epoll_wait: 1e8, accept: 1e8, read: 98765432, write: 98765432, close: 1e8, epoll_ctl: 1e8, other: 1e8, poll: 0, select: 0, io_uring_enter: 0, nanosleep: 1e8, connect: 0 },
  syscalls_per_req: 30.37, events_per_wait: 4096, wakeups: 99999999, wakeups_per_s: 9999999, req_per_wakeup: 4096, coalesced_waits: 99999999,
  hold_us: 100000, cs_voluntary: 99999999, cs_involuntary: 99999999, cs_per_req: 2.0001, user_pct: 100, sys_pct: 100,
  net_rx: 999999999, net_tx: 999999999, incoming_local: 0, incoming_remote: 0,
  latency_p50_us: 1073741.824, latency_p99_us: 1073741.824, // the histogram's widest: its last bound
};
const proxy: ProxyInterval = {
  up_opened: 999999999, up_reused: 999999999, up_pipelined: 999999999, up_retried: 999999999, up_failed: 999999999,
  up_bytes_in: 9e15, up_bytes_out: 9e15, up_syscalls: { read: 9e9, write: 9e9, close: 9e9, connect: 9e9 },
  bad_gateway: 999999999, gateway_timeout: 999999999,
};
const interval: Interval = {
  time: "2026-11-30T14:00:00.000Z", interval_s: 0.1, requests: 987654321, rps: 98765432, bytes_out: 9e12, bytes_in: 9e11,
  conns: 99999999, accepted: 99999999, errors: 99999999, timeouts: 99999999, syscalls: 3e10, syscalls_per_req: 30.37,
  wakeups: 999999999, req_per_wakeup: 4096, cs_voluntary: 999999999, cs_involuntary: 999999999, cs_per_req: 2.0001,
  user_pct: 100, sys_pct: 100, machine_cs: 999999999, machine_intr: 999999999, active_s: 99999.9, active_rps: 9876543,
  latency_p50_us: 1073741.824, latency_p99_us: 1073741.824,
  workers: [worker, { ...worker, id: 0 }, { ...worker, id: 1, proxy }],
  proxy,
};

function widest(text: string): string {
  return text.split("\n").reduce((a, b) => ([...b].length > [...a].length ? b : a), "");
}

describe("80 columns", () => {
  it("the live view, -v included, and its header", () => {
    const text = new LiveView(true).render(interval);
    const w = widest(text);
    assert.ok([...w].length <= VIEW_WIDTH, `${[...w].length} columns: ${w}`);
    assert.match(text, /^time\s+req\/s\s+MB\/s\s+conns\s+sys\/req\s+cs\/s\s+cs\/req\s+wake\/s\s+req\/wk\s+us%\s+sy%$/m);
  });
  it("the summary and the legend", () => {
    for (const text of [summary({ ...interval, interval_s: 99999.9 }), LEGEND]) {
      const w = widest(text);
      assert.ok([...w].length <= VIEW_WIDTH, `${[...w].length} columns: ${w}`);
    }
  });
});
