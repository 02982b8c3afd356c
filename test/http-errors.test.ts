// HTTP errors: every malformed or refused request gets the right status, `Connection: close`,
// and EOF, with nothing after it (bytes after a bad request are never answered).
// Runs once with one worker and once with one per CPU.
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { sleep } from "./helpers/server";
import { MODES, Pool, Server, assertAnswers, assertQuietAndOpen, assertWellFormed, expectErrorClose, req } from "./helpers/clients";

const H = "Host: x\r\n";
const FOLLOW = req("GET", "/1b"); // pipelined after a bad request: must never be answered

for (const mode of MODES) {
  describe(`errors (${mode.name})`, () => {
    const srv = new Server(mode.args);
    const small = new Server([...mode.args, "--max-body", "1000"]);
    const pool = new Pool();
    before(() => Promise.all([srv.start(), small.start()]));
    after(async () => {
      pool.closeAll();
      await Promise.all([srv.stop(), small.stop()]);
    });
    afterEach(async () => {
      pool.closeAll();
      await assertAnswers(srv.port);
      await assertAnswers(small.port);
    });

    describe("400: malformed request line", () => {
      const cases: [string, string][] = [
        ["no version", "GET /\r\n\r\n"],
        ["two spaces after the method", `GET  / HTTP/1.1\r\n${H}\r\n`],
        ["two spaces before the version", `GET /  HTTP/1.1\r\n${H}\r\n`],
        ["a trailing token", `GET / HTTP/1.1 x\r\n${H}\r\n`],
        ["a trailing space", `GET / HTTP/1.1 \r\n${H}\r\n`],
        ["a leading space", ` GET / HTTP/1.1\r\n${H}\r\n`],
        ["a tab as separator", `GET\t/ HTTP/1.1\r\n${H}\r\n`],
        ["lower-case version", `GET / http/1.1\r\n${H}\r\n`],
        ["version without minor", `GET / HTTP/1\r\n${H}\r\n`],
        ["a relative target", `GET 1b HTTP/1.1\r\n${H}\r\n`],
        ["a control byte in the target", `GET /1\x01b HTTP/1.1\r\n${H}\r\n`],
        ["only a method", "GET\r\n\r\n"],
        ["a bare CR in the request line", `GET /1b\rHTTP/1.1\r\n${H}\r\n`],
      ];
      for (const [what, raw] of cases) {
        it(`${what}: ${JSON.stringify(raw.split("\r\n")[0])} → 400 and close`, async () => {
          await expectErrorClose(pool, srv.port, raw + FOLLOW, 400);
        });
      }
    });

    describe("400: bad headers", () => {
      const cases: [string, string][] = [
        ["HTTP/1.1 without Host", "GET /1b HTTP/1.1\r\nUser-Agent: t\r\n\r\n"],
        ["two Host headers", `GET /1b HTTP/1.1\r\n${H}Host: y\r\n\r\n`],
        ["two identical Host headers", `GET /1b HTTP/1.1\r\n${H}${H}\r\n`],
        ["two Host headers in HTTP/1.0", "GET /1b HTTP/1.0\r\nHost: x\r\nhost: y\r\n\r\n"],
        ["whitespace before the colon", "GET /1b HTTP/1.1\r\nHost : x\r\n\r\n"],
        ["a tab before the colon", `GET /1b HTTP/1.1\r\n${H}X-A\t: 1\r\n\r\n`],
        ["obs-fold (a line starting with a space)", `GET /1b HTTP/1.1\r\n${H}X-A: a\r\n b\r\n\r\n`],
        ["obs-fold (a line starting with a tab)", `GET /1b HTTP/1.1\r\n${H}X-A: a\r\n\tb\r\n\r\n`],
        ["a NUL byte in a header value", `GET /1b HTTP/1.1\r\n${H}X-A: a\x00b\r\n\r\n`],
        ["a bare CR in a header value", `GET /1b HTTP/1.1\r\n${H}X-A: a\rb\r\n\r\n`],
        ["a header line without a colon", `GET /1b HTTP/1.1\r\n${H}X-A\r\n\r\n`],
        ["an empty header name", `GET /1b HTTP/1.1\r\n${H}: v\r\n\r\n`],
        ["a non-token byte in a header name", `GET /1b HTTP/1.1\r\n${H}X(A): v\r\n\r\n`],
      ];
      for (const [what, raw] of cases) {
        it(`${what} → 400 and close`, async () => {
          await expectErrorClose(pool, srv.port, Buffer.from(raw + FOLLOW, "latin1"), 400);
        });
      }
    });

    describe("size limits (--max-header 8192 by default)", () => {
      it("a header section over 8 KiB → 431 and close", async () => {
        const r = await expectErrorClose(pool, srv.port, `GET /1b HTTP/1.1\r\n${H}X-Big: ${"a".repeat(9000)}\r\n\r\n` + FOLLOW, 431);
        assert.equal(r.reason, "Request Header Fields Too Large");
      });

      it("many small headers adding up to over 8 KiB → 431 and close", async () => {
        const many = Array.from({ length: 400 }, (_, i) => `X-H${i}: ${"v".repeat(20)}\r\n`).join("");
        await expectErrorClose(pool, srv.port, `GET /1b HTTP/1.1\r\n${H}${many}\r\n`, 431);
      });

      it("a header section over 8 KiB that never ends → 431 and close", async () => {
        await expectErrorClose(pool, srv.port, `GET /1b HTTP/1.1\r\n${H}X-Big: ${"a".repeat(9000)}`, 431);
      });

      it("a request line over the limit with no end → 414 and close", async () => {
        const r = await expectErrorClose(pool, srv.port, "GET /" + "a".repeat(9000), 414);
        assert.equal(r.reason, "URI Too Long");
      });

      it("a complete request line over the limit → 414 and close", async () => {
        await expectErrorClose(pool, srv.port, `GET /${"a".repeat(9000)} HTTP/1.1\r\n${H}\r\n`, 414);
      });

      it("a header section over 8 KiB arriving in 1 KiB writes → 431 and close", async () => {
        const c = await pool.connect(srv.port);
        c.write(`GET /1b HTTP/1.1\r\n${H}`);
        for (let i = 0; i < 10 && !c.isClosed; i++) {
          c.write(`X-H${i}: ${"a".repeat(1000)}\r\n`);
          await sleep(5);
        }
        const [r] = await c.responses(1, { timeoutMs: 2000 });
        assertWellFormed(r);
        assert.equal(r.status, 431);
        assert.equal(r.header("connection"), "close");
        await c.waitClosed(2000);
        assert.equal(c.received.length, 0);
      });

      it("a request line over the limit arriving in 1 KiB writes → 414 and close", async () => {
        const c = await pool.connect(srv.port);
        c.write("GET /");
        for (let i = 0; i < 10 && !c.isClosed; i++) {
          c.write("a".repeat(1024));
          await sleep(5);
        }
        const [r] = await c.responses(1, { timeoutMs: 2000 });
        assertWellFormed(r);
        assert.equal(r.status, 414);
        assert.equal(r.header("connection"), "close");
        await c.waitClosed(2000);
        assert.equal(c.received.length, 0);
      });

      it("a header section of exactly 8192 bytes is accepted, 8193 is 431; whole or split", async () => {
        const make = (total: number) => {
          const head = `GET /1b HTTP/1.1\r\n${H}X-Pad: \r\n\r\n`;
          const raw = head.replace("X-Pad: ", "X-Pad: " + "p".repeat(total - head.length));
          assert.equal(raw.length, total);
          return raw;
        };
        for (const split of [0, 4096, 8190, 8191, 8192]) {
          const parts = (raw: string) => (split ? [raw.slice(0, split), raw.slice(split)] : [raw]);
          const c = await pool.connect(srv.port);
          for (const part of parts(make(8192))) {
            c.write(part);
            await sleep(15);
          }
          const [r] = await c.responses(1, { timeoutMs: 2000 });
          assert.equal(r.status, 200, `8192 bytes, split at ${split}`);
          await assertQuietAndOpen(c, 20);
          await expectErrorClose(pool, srv.port, parts(make(8193)), 431);
        }
      });
    });

    describe("version", () => {
      for (const v of ["HTTP/2.0", "HTTP/3.0", "HTTP/0.9"]) {
        it(`${v} → 505 and close`, async () => {
          const r = await expectErrorClose(pool, srv.port, `GET /1b ${v}\r\n${H}\r\n` + FOLLOW, 505);
          assert.equal(r.reason, "HTTP Version Not Supported");
        });
      }
    });

    describe("framing", () => {
      it("Transfer-Encoding with a coding before chunked → 501 and close (chunked alone: test/http-framing)", async () => {
        await expectErrorClose(pool, srv.port, `GET /1b HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n` + FOLLOW, 501);
      });

      it("Content-Length together with Transfer-Encoding → 400 and close", async () => {
        await expectErrorClose(pool, srv.port, `POST /1b HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n` + FOLLOW, 400);
        await expectErrorClose(pool, srv.port, `POST /1b HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n`, 400);
      });

      it("two different Content-Lengths → 400 and close", async () => {
        await expectErrorClose(pool, srv.port, `POST /1b HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd` + FOLLOW, 400);
      });

      it("two equal Content-Lengths are accepted (the body is skipped, the connection kept)", async () => {
        const c = await pool.connect(srv.port);
        c.write(`POST /1b HTTP/1.1\r\n${H}Content-Length: 3\r\ncontent-length: 3\r\n\r\nabc` + req("GET", "/100b"));
        const [r1, r2] = await c.responses(2, { timeoutMs: 2000 });
        assertWellFormed(r1);
        assert.equal(r1.status, 405);
        assert.equal(r2.status, 200);
        assert.equal(r2.body.length, 100);
        await assertQuietAndOpen(c);
      });

      for (const v of ["-1", "abc", "+5", "", "1 2", "0x10", "5, 5", "1.0"]) {
        it(`Content-Length: ${JSON.stringify(v)} → 400 and close`, async () => {
          await expectErrorClose(pool, srv.port, `POST /1b HTTP/1.1\r\n${H}Content-Length: ${v}\r\n\r\n` + FOLLOW, 400);
        });
      }
    });

    describe("body limit (--max-body 1000)", () => {
      it("a body over --max-body → 413 and close", async () => {
        const r = await expectErrorClose(pool, small.port, `POST /1b HTTP/1.1\r\n${H}Content-Length: 1001\r\n\r\n` + "b".repeat(1001), 413);
        assert.equal(r.reason, "Content Too Large");
        await expectErrorClose(pool, small.port, `GET /1b HTTP/1.1\r\n${H}Content-Length: 5000000\r\n\r\n`, 413);
      });

      it("the 413 reaches a client that keeps sending its 2 MB body", async () => {
        const c = await pool.connect(small.port);
        c.write(`POST /1b HTTP/1.1\r\n${H}Content-Length: 2000000\r\n\r\n`);
        c.write(Buffer.alloc(2000000, "b"));
        const [r] = await c.responses(1, { timeoutMs: 3000 });
        assertWellFormed(r);
        assert.equal(r.status, 413);
        assert.equal(r.header("connection"), "close");
        await c.waitClosed(3000);
        assert.equal(c.received.length, 0);
      });

      it("a body of exactly --max-body is accepted and skipped", async () => {
        const c = await pool.connect(small.port);
        c.write(`POST /1b HTTP/1.1\r\n${H}Content-Length: 1000\r\n\r\n` + "G".repeat(1000) + FOLLOW);
        const [r1, r2] = await c.responses(2, { timeoutMs: 2000 });
        assert.equal(r1.status, 405);
        assert.equal(r2.status, 200);
        await assertQuietAndOpen(c);
      });
    });

    it("a malformed request after good pipelined ones: the good ones are answered, then 400 and close", async () => {
      const c = await pool.connect(srv.port);
      c.write(req("GET", "/1b") + req("GET", "/nope") + "GET  /1b HTTP/1.1\r\n\r\n" + FOLLOW);
      const [a, b, e] = await c.responses(3, { timeoutMs: 2000 });
      assert.equal(a.status, 200);
      assert.equal(b.status, 404);
      assert.equal(e.status, 400);
      assert.equal(e.header("connection"), "close");
      await c.waitClosed(2000);
      assert.equal(c.received.length, 0);
    });

    it("open fds are back to the count right after start (both servers)", async () => {
      pool.closeAll();
      await srv.assertFdsAtBaseline();
      await small.assertFdsAtBaseline();
    });
  });
}
