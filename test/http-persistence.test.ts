// HTTP persistence: keep-alive rules for HTTP/1.1 and HTTP/1.0, Connection: close,
// --no-keepalive, pipelining, byte-at-a-time requests, a slow reader not stalling others,
// the header and idle timeouts, and a raw-socket stand-in for weighttp (-k, -K, no -k).
// Runs once with one worker and once with one per CPU.
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { RawClient, parseResponse, sleep, type Response } from "./helpers/server";
import {
  GET_1B,
  MODES,
  Pool,
  Server,
  assertAnswers,
  assertQuietAndOpen,
  assertWellFormed,
  req,
} from "./helpers/clients";

const SIZE: Record<string, number> = { "/1b": 1, "/100b": 100, "/1k": 1024, "/10k": 10240, "/100k": 102400, "/1m": 1024 * 1024 };

/** Asserts the exact response sequence: status and body length per request path. */
function assertInOrder(rs: Response[], paths: string[], heads: boolean[] = []): void {
  assert.equal(rs.length, paths.length);
  rs.forEach((r, i) => {
    const p = paths[i];
    const what = `response ${i} (${heads[i] ? "HEAD" : "GET"} ${p})`;
    assertWellFormed(r, what);
    if (p in SIZE) {
      assert.equal(r.status, 200, what);
      assert.equal(r.header("content-length"), String(SIZE[p]), what);
      assert.equal(r.body.length, heads[i] ? 0 : SIZE[p], what);
    } else {
      assert.equal(r.status, 404, what);
    }
  });
}

/** Resolves with the ms from now until the server closes c, or rejects after timeoutMs. */
async function msUntilClosed(c: RawClient, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  await c.waitClosed(timeoutMs);
  return Date.now() - t0;
}

/** Bytes received after a timeout close: nothing, or at most a 408 saying Connection: close. */
function assertTimeoutGoodbye(c: RawClient, what: string): void {
  if (c.received.length === 0) return;
  const r = parseResponse(c.received);
  assert.ok(r, `${what}: a partial response before the close: ${JSON.stringify(c.received.toString("latin1").slice(0, 100))}`);
  assert.equal(r.status, 408, `${what}: only a 408 may precede a timeout close`);
  assert.equal(r.header("connection"), "close");
}

for (const mode of MODES) {
  describe(`persistence (${mode.name})`, () => {
    const srv = new Server(mode.args);
    const noKa = new Server([...mode.args, "--no-keepalive"]);
    // --defer-accept 0: its "silent connection" must reach vw at once to be timed from there.
    const timed = new Server([...mode.args, "--header-timeout", "1", "--idle-timeout", "2", "--defer-accept", "0"]);
    const pool = new Pool();
    before(() => Promise.all([srv.start(), noKa.start(), timed.start()]));
    after(async () => {
      pool.closeAll();
      await Promise.all([srv.stop(), noKa.stop(), timed.stop()]);
    });
    afterEach(async () => {
      pool.closeAll();
      await assertAnswers(srv.port);
      await assertAnswers(timed.port);
      // --no-keepalive answers and closes: assertAnswers only needs the one response.
      await assertAnswers(noKa.port);
    });

    describe("keep-alive rules", () => {
      it("HTTP/1.1 keeps the connection: several requests on one socket, no Connection header", async () => {
        const c = await pool.connect(srv.port);
        for (const p of ["/1b", "/100b", "/nope", "/1k", "/1b"]) {
          const r = await c.request(req("GET", p));
          assertInOrder([r], [p]);
          assert.equal(r.header("connection"), undefined, `GET ${p}`);
        }
        await assertQuietAndOpen(c, 200);
        const r = await c.request(GET_1B);
        assert.equal(r.status, 200, "still usable after a pause");
      });

      for (const value of ["close", "Close", "CLOSE", "keep-alive, close", "foo ,  close"]) {
        it(`HTTP/1.1 with Connection: ${value} → Connection: close, then EOF`, async () => {
          const c = await pool.connect(srv.port);
          const r = await c.request(req("GET", "/100b", `Connection: ${value}\r\n`));
          assertInOrder([r], ["/100b"]);
          assert.equal(r.header("connection"), "close");
          await c.waitClosed(2000);
          assert.equal(c.received.length, 0);
        });
      }

      it("HTTP/1.0 without keep-alive → Connection: close, then EOF", async () => {
        for (const extra of ["", "Host: x\r\n", "Connection: close\r\n", "Connection: foo\r\n"]) {
          const c = await pool.connect(srv.port);
          const r = await c.request(`GET /1k HTTP/1.0\r\n${extra}\r\n`);
          assertInOrder([r], ["/1k"]);
          assert.equal(r.header("connection"), "close", `HTTP/1.0 with ${JSON.stringify(extra)}`);
          await c.waitClosed(2000);
          assert.equal(c.received.length, 0);
        }
      });

      it("HTTP/1.0 with Connection: keep-alive → Connection: keep-alive and the connection stays", async () => {
        const c = await pool.connect(srv.port);
        for (const [p, value] of [["/1b", "keep-alive"], ["/nope", "Keep-Alive"], ["/100b", "keep-alive"]]) {
          const r = await c.request(`GET ${p} HTTP/1.0\r\nConnection: ${value}\r\n\r\n`);
          assertInOrder([r], [p]);
          assert.equal(r.header("connection"), "keep-alive", `GET ${p} HTTP/1.0`);
        }
        await assertQuietAndOpen(c);
        // ... and the last request without keep-alive ends it.
        const r = await c.request("GET /1b HTTP/1.0\r\n\r\n");
        assert.equal(r.header("connection"), "close");
        await c.waitClosed(2000);
      });

      it("Connection: close with requests pipelined after it: one response, then EOF", async () => {
        const c = await pool.connect(srv.port);
        c.write(req("GET", "/1b", "Connection: close\r\n") + req("GET", "/100b") + req("GET", "/nope"));
        const [r] = await c.responses(1, { timeoutMs: 2000 });
        assertInOrder([r], ["/1b"]);
        assert.equal(r.header("connection"), "close");
        await c.waitClosed(2000);
        assert.equal(c.received.length, 0, "nothing after the Connection: close response");
      });

      it("a client that half-closes after its requests still gets every response, then EOF", async () => {
        const c = await pool.connect(srv.port);
        c.write(req("GET", "/1b") + req("GET", "/100k") + req("GET", "/nope"));
        c.socket.end();
        const rs = await c.responses(3, { timeoutMs: 2000 });
        assertInOrder(rs, ["/1b", "/100k", "/nope"]);
        await c.waitClosed(2000);
        assert.equal(c.received.length, 0);
      });

      it("--no-keepalive: every response says Connection: close, then EOF", async () => {
        for (const raw of [
          req("GET", "/1b"),
          req("GET", "/nope"),
          req("POST", "/1b"),
          "GET /100b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
          req("GET", "/1b", "Connection: keep-alive\r\n"),
        ]) {
          const c = await pool.connect(noKa.port);
          c.write(raw);
          const [r] = await c.responses(1, { timeoutMs: 2000 });
          assertWellFormed(r, raw.split("\r\n")[0]);
          assert.equal(r.header("connection"), "close", raw.split("\r\n")[0]);
          await c.waitClosed(2000);
          assert.equal(c.received.length, 0);
        }
      });

      it("--no-keepalive: two pipelined requests get one response, then EOF", async () => {
        const c = await pool.connect(noKa.port);
        c.write(GET_1B + req("GET", "/100b"));
        const [r] = await c.responses(1, { timeoutMs: 2000 });
        assertInOrder([r], ["/1b"]);
        assert.equal(r.header("connection"), "close");
        await c.waitClosed(2000);
        assert.equal(c.received.length, 0, "nothing after the first response");
      });
    });

    describe("pipelining", () => {
      it("256 requests in one write → 256 responses in order", async () => {
        const c = await pool.connect(srv.port);
        const paths = Array.from({ length: 256 }, (_, i) => ["/1b", "/100b", "/nope"][i % 3]);
        c.write(paths.map((p) => req("GET", p)).join(""));
        const rs = await c.responses(256, { timeoutMs: 3000 });
        assertInOrder(rs, paths);
        await assertQuietAndOpen(c);
      });

      it("3000 pipelined requests (90 KB, more than a read, MBs of responses) in one write, in order", async () => {
        const c = await pool.connect(srv.port);
        const kinds: [string, string][] = [["GET", "/1b"], ["GET", "/100b"], ["HEAD", "/1m"], ["GET", "/1k"], ["GET", "/nope"], ["GET", "/10k"]];
        // Each kind's response length on the wire (the Date has a fixed width), from one sample.
        const wire = new Map<string, number>();
        for (const [m, p] of kinds) wire.set(m + p, (await c.request(req(m, p), { head: m === "HEAD" })).length);
        const batch = Array.from({ length: 3000 }, (_, i) => kinds[(i * 7) % kinds.length]);
        const total = batch.reduce((s, [m, p]) => s + wire.get(m + p)!, 0);
        c.write(batch.map(([m, p]) => req(m, p)).join(""));
        // Wait on the byte count, then parse once (parsing on every chunk would be quadratic).
        await c.until((b) => b.length >= total, 5000);
        const buf = c.received;
        let off = 0;
        batch.forEach(([m, p], i) => {
          const r = parseResponse(buf, off, m === "HEAD");
          assert.ok(r, `response ${i} (${m} ${p}) is whole`);
          assert.equal(r.status, p === "/nope" ? 404 : 200, `response ${i} (${m} ${p})`);
          if (p in SIZE) assert.equal(r.header("content-length"), String(SIZE[p]), `response ${i} (${m} ${p})`);
          if (p in SIZE) assert.equal(r.body.length, m === "HEAD" ? 0 : SIZE[p], `response ${i} (${m} ${p})`);
          off += r.length;
        });
        assert.equal(buf.length, total, "no bytes beyond the 3000 responses");
        c.destroy();
      });

      it("a pipelined batch mixing HEAD and GET", async () => {
        const c = await pool.connect(srv.port);
        const paths = Array.from({ length: 64 }, (_, i) => ["/1k", "/1b", "/nope", "/100b"][i % 4]);
        const heads = paths.map((_, i) => i % 3 === 0);
        c.write(paths.map((p, i) => req(heads[i] ? "HEAD" : "GET", p)).join(""));
        const rs = await c.responses(paths.length, { head: heads, timeoutMs: 3000 });
        assertInOrder(rs, paths, heads);
        await assertQuietAndOpen(c);
      });

      it("100 pipelined requests (GET, HEAD, POST with bodies) cut at arbitrary points", async () => {
        const c = await pool.connect(srv.port);
        const paths: string[] = [];
        const heads: boolean[] = [];
        const statuses: number[] = [];
        let raw = "";
        for (let i = 0; i < 100; i++) {
          const p = ["/1b", "/100b", "/nope", "/1k"][i % 4];
          if (i % 5 === 4) {
            const body = req("GET", "/nope").repeat(i % 3);
            raw += `POST ${p} HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
            statuses.push(405);
          } else {
            raw += req(i % 3 === 0 ? "HEAD" : "GET", p);
            statuses.push(p === "/nope" ? 404 : 200);
          }
          paths.push(p);
          heads.push(i % 5 !== 4 && i % 3 === 0);
        }
        let seed = 12345; // a fixed pseudo-random sequence of cut points, 1 to 40 bytes apart
        const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648);
        for (let off = 0; off < raw.length; ) {
          const n = 1 + (next() % 40);
          c.write(raw.slice(off, off + n));
          off += n;
          if (next() % 3 === 0) await sleep(1);
        }
        const rs = await c.responses(100, { head: heads, timeoutMs: 3000 });
        assert.deepEqual(rs.map((r) => r.status), statuses);
        rs.forEach((r, i) => {
          if (statuses[i] === 200) {
            assert.equal(r.header("content-length"), String(SIZE[paths[i]]), `response ${i}`);
            assert.equal(r.body.length, heads[i] ? 0 : SIZE[paths[i]], `response ${i}`);
          }
        });
        await assertQuietAndOpen(c);
      });

      it("pipelined large responses (/1m, /100k, /10k, /1b) come back whole and in order", async () => {
        const c = await pool.connect(srv.port);
        const sizes: [string, number][] = [["/1m", 1 << 20], ["/1b", 1], ["/100k", 102400], ["/10k", 10240], ["/1b", 1], ["/100k", 102400]];
        const batch = Array.from({ length: 24 }, (_, i) => sizes[i % sizes.length]);
        c.write(batch.map(([p]) => req("GET", p)).join(""));
        const rs = await c.responses(batch.length, { timeoutMs: 5000 });
        const bodies = new Map<string, Buffer>();
        rs.forEach((r, i) => {
          const [p, size] = batch[i];
          assert.equal(r.status, 200, `response ${i} (${p})`);
          assert.equal(r.header("content-length"), String(size), `response ${i} (${p})`);
          assert.equal(r.body.length, size, `response ${i} (${p})`);
          const first = bodies.get(p);
          if (first) assert.ok(first.equals(r.body), `response ${i} (${p}) has the same bytes as the first ${p}`);
          else bodies.set(p, r.body);
        });
        await assertQuietAndOpen(c);
      });

      it("a request fed one byte at a time is answered once, only when complete", async () => {
        const c = await pool.connect(srv.port);
        const raw = Buffer.from(req("GET", "/100b", "User-Agent: slow\r\n") + req("HEAD", "/1k"));
        const first = raw.indexOf("\r\n\r\n") + 4;
        for (let i = 0; i < raw.length; i++) {
          if (i === first - 1) {
            await sleep(20);
            assert.equal(c.received.length, 0, "answered before the header section was complete");
          }
          c.write(raw.subarray(i, i + 1));
          await sleep(1 + (i % 2));
        }
        const rs = await c.responses(2, { head: [false, true], timeoutMs: 2000 });
        assertInOrder(rs, ["/100b", "/1k"], [false, true]);
        await assertQuietAndOpen(c);
      });

      it("a slow reader of /1m does not stall another connection", async () => {
        const a = await pool.connect(srv.port);
        a.socket.pause();
        // Several MB, more than the loopback buffers hold: the server must wait on this reader.
        const n = 8;
        a.write(req("GET", "/1m").repeat(n));
        await sleep(100);
        const b = await pool.connect(srv.port);
        const t0 = Date.now();
        const r = await b.request(GET_1B, { timeoutMs: 1000 });
        const took = Date.now() - t0;
        assertInOrder([r], ["/1b"]);
        assert.ok(took < 500, `GET /1b took ${took} ms while another connection was a slow reader`);
        await sleep(400);
        a.socket.resume();
        const rs = await a.responses(n, { timeoutMs: 5000 });
        assertInOrder(rs, Array(n).fill("/1m"));
        for (const x of rs) assert.ok(x.body.equals(rs[0].body), "every /1m body is the same bytes");
        await assertQuietAndOpen(a);
      });
    });

    describe("timeouts (--header-timeout 1 --idle-timeout 2)", () => {
      it("half a header, a trickled header, an idle keep-alive and a silent connection are closed in time; an active one is not", async () => {
        const half = await pool.connect(timed.port);
        const trickle = await pool.connect(timed.port);
        const idle = await pool.connect(timed.port);
        const silent = await pool.connect(timed.port);
        const active = await pool.connect(timed.port);

        half.write("GET /1b HTTP/1.1\r\nHo");
        const halfClosed = msUntilClosed(half, 4000);

        // A byte every 150 ms: the header deadline counts from its start, not from the last byte.
        const trickleClosed = msUntilClosed(trickle, 4000);
        const trickling = (async () => {
          const raw = "GET /1b HTTP/1.1\r\nX-Slow: " + "a".repeat(100);
          for (let i = 0; i < raw.length && !trickle.isClosed; i++) {
            trickle.write(raw[i]);
            await sleep(150);
          }
        })();

        const r = await idle.request(GET_1B);
        assertInOrder([r], ["/1b"]);
        const idleClosed = msUntilClosed(idle, 5000);
        const silentClosed = msUntilClosed(silent, 5000);

        // Requests 700 ms apart for 3.5 s: more than both timeouts in total, never idle for long.
        const activity = (async () => {
          for (let i = 0; i < 5; i++) {
            await sleep(700);
            const x = await active.request(GET_1B, { timeoutMs: 1000 });
            assertInOrder([x], ["/1b"]);
          }
        })();

        const [tHalf, tTrickle, tIdle, tSilent] = await Promise.all([halfClosed, trickleClosed, idleClosed, silentClosed]);
        await trickling;
        await activity;
        // A timeout strikes at the first 1 s tick after it is due; a second more for this machine.
        assert.ok(tHalf >= 800 && tHalf <= 3000, `half a header closed after ${tHalf} ms (header timeout 1 s)`);
        assert.ok(tTrickle >= 800 && tTrickle <= 3000, `a trickled header closed after ${tTrickle} ms (header timeout 1 s)`);
        assert.ok(tIdle >= 1500 && tIdle <= 4000, `an idle keep-alive connection closed after ${tIdle} ms (idle timeout 2 s)`);
        assert.ok(tSilent <= 4000, `a connection that never sent a byte closed after ${tSilent} ms`);
        assertTimeoutGoodbye(half, "half a header");
        assertTimeoutGoodbye(trickle, "trickled header");
        assert.equal(idle.received.length, 0, "nothing sent to an idle connection before closing it");
        assertTimeoutGoodbye(silent, "silent connection");
        assert.equal(active.isClosed, false, "an active keep-alive connection was closed");
      });
    });

    describe("weighttp stand-in", () => {
      const wreq = () => `GET /1b HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\nUser-Agent: weighttp/0.4\r\n`;
      /** weighttp gives up keep-alive when a response's Connection header starts with 'c'. */
      const assertWeighttpKeeps = (r: Response) => {
        assert.match(r.raw, /^HTTP\/1\.1 /, "weighttp wants an HTTP/1.1 status line");
        assert.equal(r.status, 200);
        assert.equal(r.body.length, 1);
        for (const v of r.headers.get("connection") ?? []) assert.doesNotMatch(v, /^c/i, `Connection: ${v}`);
      };

      it("-k: 100 sequential keep-alive requests on one connection", async () => {
        const c = await pool.connect(srv.port);
        for (let i = 0; i < 100; i++) assertWeighttpKeeps(await c.request(wreq() + "Connection: keep-alive\r\n\r\n"));
        await assertQuietAndOpen(c);
      });

      it("-k -K 4: 25 rounds of 4 pipelined requests", async () => {
        const c = await pool.connect(srv.port);
        for (let i = 0; i < 25; i++) {
          c.write((wreq() + "Connection: keep-alive\r\n\r\n").repeat(4));
          for (const r of await c.responses(4, { timeoutMs: 2000 })) assertWeighttpKeeps(r);
        }
        await assertQuietAndOpen(c);
      });

      it("without -k (Connection: close): one response, then EOF", async () => {
        for (let i = 0; i < 5; i++) {
          const c = await pool.connect(srv.port);
          const r = await c.request(wreq() + "Connection: close\r\n\r\n");
          assert.match(r.raw, /^HTTP\/1\.1 200 /);
          assert.equal(r.header("connection"), "close");
          await c.waitClosed(2000);
          assert.equal(c.received.length, 0);
        }
      });
    });

    it("open fds are back to the count right after start (all three servers)", async () => {
      pool.closeAll();
      await srv.assertFdsAtBaseline();
      await noKa.assertFdsAtBaseline();
      await timed.assertFdsAtBaseline();
    });
  });
}
