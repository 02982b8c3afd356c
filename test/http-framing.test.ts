// HTTP framing: a request body (Content-Length, or chunked: RFC 9112 §7.1) is consumed and never
// parsed as a request, however it is split across writes; leading empty lines before a request
// are ignored.
// Runs once with one worker and once with one per CPU.
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { RawClient, sleep } from "./helpers/server";
import { GET_1B, MODES, Pool, Server, assertAnswers, assertQuietAndOpen, assertWellFormed, expectErrorClose, req } from "./helpers/clients";

const H = "Host: x\r\n";
/** A complete request hidden in a body: answering it would be a 404. */
const SMUGGLED = req("GET", "/nope");

function post(body: string | Buffer, method = "POST", path = "/1b", extra = "", version = "HTTP/1.1"): [string, Buffer] {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body, "latin1");
  return [`${method} ${path} ${version}\r\n${version === "HTTP/1.1" ? H : ""}Content-Length: ${b.length}\r\n${extra}\r\n`, b];
}

/** Waits for exactly these statuses (in order), then asserts nothing more comes and the connection stays. */
async function expectStatuses(c: RawClient, statuses: number[], heads: boolean[] = []): Promise<void> {
  const rs = await c.responses(statuses.length, { head: heads, timeoutMs: 2000 });
  rs.forEach((r, i) => assertWellFormed(r, `response ${i}`));
  assert.deepEqual(rs.map((r) => r.status), statuses);
  await assertQuietAndOpen(c);
}

for (const mode of MODES) {
  describe(`framing (${mode.name})`, () => {
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

    describe("a body is consumed, never parsed as a request", () => {
      it("a POST whose body is a whole request, then GET /1b, in one write → 405 then 200", async () => {
        const c = await pool.connect(srv.port);
        const [head, body] = post(SMUGGLED);
        assert.equal(body.length, SMUGGLED.length);
        c.write(Buffer.concat([Buffer.from(head), body, Buffer.from(GET_1B)]));
        await expectStatuses(c, [405, 200]);
      });

      it("the same with the body split across writes", async () => {
        const [head, body] = post(SMUGGLED);
        const splits: Buffer[][] = [
          [Buffer.from(head), body.subarray(0, 10), Buffer.concat([body.subarray(10), Buffer.from(GET_1B)])],
          [Buffer.concat([Buffer.from(head), body.subarray(0, 5)]), body.subarray(5, 20), body.subarray(20), Buffer.from(GET_1B)],
          [Buffer.from(head.slice(0, -1)), Buffer.concat([Buffer.from("\n"), body.subarray(0, body.length - 1)]), Buffer.concat([body.subarray(body.length - 1), Buffer.from(GET_1B)])],
        ];
        for (const parts of splits) {
          const c = await pool.connect(srv.port);
          for (const p of parts) {
            c.write(p);
            await sleep(15);
          }
          await expectStatuses(c, [405, 200]);
        }
      });

      it("the body fed one byte at a time", async () => {
        const c = await pool.connect(srv.port);
        const [head, body] = post(SMUGGLED);
        c.write(head);
        for (let i = 0; i < body.length; i++) {
          c.write(body.subarray(i, i + 1));
          await sleep(1);
        }
        c.write(GET_1B);
        await expectStatuses(c, [405, 200]);
      });

      it("a 100 KB body of pipelined requests, written in 10 KB pieces, is skipped whole", async () => {
        const c = await pool.connect(srv.port);
        const reqs = SMUGGLED.repeat(Math.ceil(100_000 / SMUGGLED.length));
        const [head, body] = post(reqs, "PUT");
        c.write(head);
        for (let i = 0; i < body.length; i += 10_000) {
          c.write(body.subarray(i, i + 10_000));
          await sleep(2);
        }
        c.write(GET_1B + req("GET", "/100b"));
        const rs = await c.responses(3, { timeoutMs: 2000 });
        assert.deepEqual(rs.map((r) => r.status), [405, 200, 200]);
        assert.equal(rs[2].body.length, 100);
        await assertQuietAndOpen(c);
      });

      it("a GET with a body: 200, the body skipped", async () => {
        const c = await pool.connect(srv.port);
        const [head, body] = post(SMUGGLED, "GET", "/100b");
        c.write(head + body.toString("latin1") + GET_1B);
        const rs = await c.responses(2, { timeoutMs: 2000 });
        assert.deepEqual(rs.map((r) => r.status), [200, 200]);
        assert.equal(rs[0].body.length, 100);
        assert.equal(rs[1].body.length, 1);
        await assertQuietAndOpen(c);
      });

      it("bodies after a 404, a 501 and a HEAD are skipped too", async () => {
        const c = await pool.connect(srv.port);
        const parts = [post(SMUGGLED, "GET", "/nope"), post(SMUGGLED, "FOO", "/1b"), post(SMUGGLED, "HEAD", "/1k")];
        c.write(parts.map(([h, b]) => h + b.toString("latin1")).join("") + GET_1B);
        await expectStatuses(c, [404, 501, 200, 200], [false, false, true, false]);
      });

      it("Content-Length: 0 and Content-Length: 005 frame exactly", async () => {
        const c = await pool.connect(srv.port);
        c.write(`POST /1b HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n` + GET_1B + `POST /1b HTTP/1.1\r\n${H}Content-Length: 005\r\n\r\nGET /` + GET_1B);
        await expectStatuses(c, [405, 200, 405, 200]);
      });

      it("HTTP/1.0 keep-alive POST with a body: 405 keep-alive, the body skipped", async () => {
        const c = await pool.connect(srv.port);
        const [head, body] = post(SMUGGLED, "POST", "/1b", "Connection: keep-alive\r\n", "HTTP/1.0");
        c.write(head + body.toString("latin1") + "GET /1b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        const rs = await c.responses(2, { timeoutMs: 2000 });
        assert.deepEqual(rs.map((r) => r.status), [405, 200]);
        for (const r of rs) assert.equal(r.header("connection"), "keep-alive");
        await assertQuietAndOpen(c);
      });

      it("a POST with a body and Connection: close: 405, then EOF; what follows is not answered", async () => {
        const c = await pool.connect(srv.port);
        const [head, body] = post(SMUGGLED, "POST", "/1b", "Connection: close\r\n");
        c.write(head + body.toString("latin1") + GET_1B);
        const [r] = await c.responses(1, { timeoutMs: 2000 });
        assert.equal(r.status, 405);
        assert.equal(r.header("connection"), "close");
        await c.waitClosed(2000);
        assert.equal(c.received.length, 0, "a response after Connection: close");
      });
    });

    describe("chunked request bodies (RFC 9112 §7.1): decoded, discarded, never parsed as a request", () => {
      const chunkedHead = (method = "POST", path = "/1b", te = "chunked", extra = ""): string =>
        `${method} ${path} HTTP/1.1\r\n${H}Transfer-Encoding: ${te}\r\n${extra}\r\n`;
      /** SMUGGLED (a whole request) as chunked data, with extensions and trailers. */
      const body = (): string => {
        const a = SMUGGLED.slice(0, 10);
        const b = SMUGGLED.slice(10);
        return `${a.length.toString(16)};ext=1;q="a;b\\"c"\r\n${a}\r\n` + `00${b.length.toString(16).toUpperCase()} ; x\r\n${b}\r\n` + `0;last\r\nX-Trailer: t\r\nChecksum: abc\r\n\r\n`;
      };

      it("a GET with the empty body 0 CRLF CRLF: 200, the connection kept", async () => {
        const c = await pool.connect(srv.port);
        c.write(chunkedHead("GET") + "0\r\n\r\n" + GET_1B);
        await expectStatuses(c, [200, 200]);
      });

      it("a body with chunk extensions and trailer fields whose data is a whole request: answered once, then the next request", async () => {
        const c = await pool.connect(srv.port);
        c.write(chunkedHead() + body() + GET_1B);
        await expectStatuses(c, [405, 200]);
        const d = await pool.connect(srv.port);
        d.write(chunkedHead("GET", "/100b", "Chunked") + body() + req("GET", "/1k"));
        const rs = await d.responses(2, { timeoutMs: 2000 });
        assert.deepEqual(rs.map((r) => [r.status, r.body.length]), [[200, 100], [200, 1024]]);
        await assertQuietAndOpen(d);
      });

      it("the same split at every byte boundary of the body (several writes)", async () => {
        const all = chunkedHead() + body() + GET_1B;
        const start = chunkedHead().length;
        for (let cut = start; cut < all.length - GET_1B.length; cut += 7) {
          const c = await pool.connect(srv.port);
          c.write(all.slice(0, cut));
          await sleep(3);
          c.write(all.slice(cut));
          await expectStatuses(c, [405, 200]);
          c.destroy();
        }
      });

      it("fed one byte at a time; the answer waits for the end of the body", async () => {
        const c = await pool.connect(srv.port);
        c.write(chunkedHead("GET"));
        const b = body();
        for (let i = 0; i < b.length; i++) {
          if (i === b.length - 3) assert.equal(c.received.length, 0, "answered before the body ended");
          c.write(b[i]);
          await sleep(1);
        }
        c.write(GET_1B);
        await expectStatuses(c, [200, 200]);
      });

      it("a 100 KB chunked body in many chunks, HTTP/1.1 keep-alive, then Connection: close after a chunked body", async () => {
        const c = await pool.connect(srv.port);
        const chunk = SMUGGLED.repeat(50);
        let data = "";
        for (let i = 0; i < 60; i++) data += `${chunk.length.toString(16)}\r\n${chunk}\r\n`;
        c.write(chunkedHead("PUT") + data + "0\r\n\r\n" + chunkedHead("GET", "/1b", "chunked", "Connection: close\r\n") + "1\r\nG\r\n0\r\n\r\n" + GET_1B);
        const rs = await c.responses(2, { timeoutMs: 3000 });
        assert.deepEqual(rs.map((r) => r.status), [405, 200]);
        assert.equal(rs[1].header("connection"), "close");
        await c.waitClosed(2000);
        assert.equal(c.received.length, 0);
      });

      it("data over --max-body (1000): 413 and close, as the answer; exactly 1000 is accepted", async () => {
        await expectErrorClose(pool, small.port, chunkedHead() + `3e9\r\n${"a".repeat(1001)}\r\n0\r\n\r\n` + GET_1B, 413);
        await expectErrorClose(pool, small.port, chunkedHead() + `1f4\r\n${"a".repeat(500)}\r\n1f5\r\n${"b".repeat(501)}\r\n0\r\n\r\n`, 413);
        await expectErrorClose(pool, small.port, chunkedHead() + "ffffffffffffffffffffffff\r\n", 413);
        const c = await pool.connect(small.port);
        c.write(chunkedHead() + `1f4\r\n${"a".repeat(500)}\r\n1F4\r\n${"b".repeat(500)}\r\n0\r\n\r\n` + GET_1B);
        await expectStatuses(c, [405, 200]);
      });

      const malformed: [string, string][] = [
        ["a bare LF after the size", "5\nhello\r\n0\r\n\r\n"],
        ["a bare LF after the data", "5\r\nhello\n0\r\n\r\n"],
        ["data longer than its size", "3\r\nhello\r\n0\r\n\r\n"],
        ["a size that is not hex", "g\r\nhello\r\n0\r\n\r\n"],
        ["a signed size", "+5\r\nhello\r\n0\r\n\r\n"],
        ["a 0x prefix", "0x5\r\nhello\r\n0\r\n\r\n"],
        ["an empty size line", "\r\nhello\r\n0\r\n\r\n"],
        ["whitespace after the size without an extension", "5 \r\nhello\r\n0\r\n\r\n"],
        ["an extension without a name", "5;\r\nhello\r\n0\r\n\r\n"],
        ["an extension value that is not a token", "5;a=b c\r\nhello\r\n0\r\n\r\n"],
        ["an unterminated quoted extension", '5;a="b\r\nhello\r\n0\r\n\r\n'],
        ["a control byte in an extension", "5;a\x01\r\nhello\r\n0\r\n\r\n"],
        ["a trailer without a colon", "0\r\nX-T\r\n\r\n"],
        ["an obs-folded trailer", "0\r\nX-T: a\r\n b\r\n\r\n"],
        ["whitespace before a trailer's colon", "0\r\nX-T : a\r\n\r\n"],
        ["a bare LF ending the body", "0\r\n\n"],
        ["a bare CR in the data's CRLF", "5\r\nhello\rx0\r\n\r\n"],
      ];
      for (const [what, b] of malformed) {
        it(`${what} → 400 and close`, async () => {
          await expectErrorClose(pool, srv.port, Buffer.from(chunkedHead() + b + GET_1B, "latin1"), 400);
        });
      }

      it("a chunk-size line or trailer section over --max-header → 400 / 431 and close", async () => {
        await expectErrorClose(pool, srv.port, chunkedHead() + `5;${"e".repeat(9000)}\r\nhello\r\n0\r\n\r\n`, 400);
        await expectErrorClose(pool, srv.port, chunkedHead() + `0\r\nX-T: ${"t".repeat(9000)}\r\n\r\n`, 431);
      });

      const codings: [string, number][] = [
        ["gzip, chunked", 501], // another coding before chunked: vw cannot decode it
        ["deflate,chunked", 501],
        ["x-custom, chunked", 501],
        ["chunked, gzip", 400], // chunked not final (§6.3)
        ["gzip", 400],
        ["chunked, chunked", 400], // chunked twice (§6.1)
        ["chunked;q=1", 400],
        ["", 400],
        [",", 400],
        ["chunked x", 400],
      ];
      for (const [te, status] of codings) {
        it(`Transfer-Encoding: ${JSON.stringify(te)} → ${status} and close`, async () => {
          await expectErrorClose(pool, srv.port, chunkedHead("POST", "/1b", te) + "0\r\n\r\n" + GET_1B, status);
        });
      }

      it("Transfer-Encoding on two lines is one list; chunked last on the second line is fine", async () => {
        const c = await pool.connect(srv.port);
        c.write(`POST /1b HTTP/1.1\r\n${H}Transfer-Encoding: ,\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n` + GET_1B);
        await expectStatuses(c, [405, 200]);
        await expectErrorClose(pool, srv.port, `POST /1b HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400);
        await expectErrorClose(pool, srv.port, `POST /1b HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 501);
      });

      it("Transfer-Encoding in HTTP/1.0 (faulty framing, §6.1) and with Content-Length → 400 and close", async () => {
        await expectErrorClose(pool, srv.port, "POST /1b HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + GET_1B, 400);
        await expectErrorClose(pool, srv.port, `POST /1b HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n` + GET_1B, 400);
      });
    });

    describe("leading empty lines", () => {
      it("CRLFs before a request are ignored", async () => {
        const c = await pool.connect(srv.port);
        c.write("\r\n\r\n" + GET_1B);
        await expectStatuses(c, [200]);
      });

      it("CRLFs between pipelined requests are ignored", async () => {
        const c = await pool.connect(srv.port);
        c.write(GET_1B + "\r\n" + req("GET", "/100b") + "\r\n\r\n" + req("GET", "/nope"));
        await expectStatuses(c, [200, 200, 404]);
      });

      it("CRLFs in their own writes get no response, then the request is answered", async () => {
        const c = await pool.connect(srv.port);
        for (const p of ["\r\n", "\r", "\n", "\r\n"]) {
          c.write(p);
          await sleep(15);
        }
        await assertQuietAndOpen(c, 50);
        c.write(GET_1B);
        await expectStatuses(c, [200]);
      });

      it("CRLFs after a keep-alive response, before the next request", async () => {
        const c = await pool.connect(srv.port);
        const r = await c.request(GET_1B);
        assert.equal(r.status, 200);
        c.write("\r\n");
        await assertQuietAndOpen(c, 50);
        c.write(req("GET", "/1k"));
        await expectStatuses(c, [200]);
      });
    });

    it("open fds are back to the count right after start", async () => {
      pool.closeAll();
      await srv.assertFdsAtBaseline();
      await small.assertFdsAtBaseline();
    });
  });
}
