// No engine drops output it owes a client: pipelined requests whose answers are far above the
// socket buffer, from a client that half-closes (shutdown SHUT_WR) right after sending, or that
// reads slowly, get every response complete, then the close. Sends that the kernel takes only in
// part, or refuses for now (EAGAIN), are resumed, never treated as fatal.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";

import { engineList, engineSkip } from "./helpers/engines";
import { parseResponse, sleep, startVw, type VwProcess } from "./helpers/server";

const VARIANTS = engineList().flatMap((e) => [
  { name: e, engine: e, args: ["--engine", e] },
  ...(e === "uring" ? [{ name: "uring --sqpoll", engine: e, args: ["--engine", e, "--sqpoll"] }] : []),
]);

interface Outcome {
  bytes: Buffer;
  ended: boolean; // the server closed (FIN) after the bytes
}

/**
 * Writes `raw` in one send, half-closes, then reads until the server closes. `pauseMs`: a slow
 * reader that lets the server's socket buffer fill before it reads at all.
 */
function halfClosedExchange(port: number, raw: string, pauseMs: number, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ bytes: Buffer.concat(chunks), ended: false });
    }, timeoutMs);
    s.on("connect", () => {
      if (pauseMs > 0) s.pause();
      s.end(raw); // one write, then shutdown(SHUT_WR)
      if (pauseMs > 0) setTimeout(() => s.resume(), pauseMs);
    });
    s.on("data", (d: Buffer) => chunks.push(d));
    s.on("end", () => {
      clearTimeout(timer);
      s.destroy();
      resolve({ bytes: Buffer.concat(chunks), ended: true });
    });
    s.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** Splits the bytes into responses; each must be complete (its whole Content-Length there). */
function countComplete(bytes: Buffer, size: number): number {
  let off = 0;
  let n = 0;
  for (;;) {
    const r = parseResponse(bytes, off);
    if (!r) break;
    assert.equal(r.status, 200, `response ${n}`);
    assert.equal(r.body.length, size, `response ${n}: body ${r.body.length} of ${size} bytes`);
    off += r.length;
    n++;
  }
  assert.equal(off, bytes.length, `${bytes.length - off} bytes after the last complete response`);
  return n;
}

const CASES = [
  { what: "20 x /1m (20 MiB)", path: "/1m", size: 1 << 20, count: 20, pauseMs: 0 },
  { what: "200 x /100k (~20 MB)", path: "/100k", size: 100 * 1024, count: 200, pauseMs: 0 },
  { what: "20 x /1m to a reader that waits 500 ms first", path: "/1m", size: 1 << 20, count: 20, pauseMs: 500 },
];

for (const v of VARIANTS) {
  describe(`owed output is delivered whole: ${v.name}`, { skip: engineSkip(v.engine) ?? false }, () => {
    for (const c of CASES) {
      it(`${c.what} pipelined in one send, then SHUT_WR: every response, then the close`, { timeout: 60000 }, async () => {
        const vw: VwProcess = await startVw(["--workers", "1", "--quiet", ...v.args]);
        try {
          const raw = `GET ${c.path} HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(c.count);
          const out = await halfClosedExchange(vw.port, raw, c.pauseMs, 30000);
          assert.equal(countComplete(out.bytes, c.size), c.count);
          assert.ok(out.ended, "the server did not close after the last response");
          // The worker is still well: a fresh connection is answered.
          const again = await halfClosedExchange(vw.port, "GET /1b HTTP/1.1\r\nHost: x\r\n\r\n", 0, 5000);
          assert.equal(countComplete(again.bytes, 1), 1);
        } finally {
          await vw.stop();
        }
      });
    }
    it("several half-closing clients at once each get all 16 of their /1m responses", { timeout: 60000 }, async () => {
      const vw = await startVw(["--workers", "1", "--quiet", ...v.args]);
      try {
        const raw = "GET /1m HTTP/1.1\r\nHost: x\r\n\r\n".repeat(16);
        const outs = await Promise.all([0, 100, 0, 300].map((p) => halfClosedExchange(vw.port, raw, p, 40000)));
        for (const o of outs) {
          assert.equal(countComplete(o.bytes, 1 << 20), 16);
          assert.ok(o.ended);
        }
      } finally {
        await sleep(0);
        await vw.stop();
      }
    });
  });
}
