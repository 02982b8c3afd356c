// HTTP framing: a request body (Content-Length) is consumed and never parsed as a request,
// however it is split across writes; leading empty lines before a request are ignored.
// Runs once with one worker and once with one per CPU.
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { RawClient, sleep } from "./helpers/server";
import { GET_1B, MODES, Pool, Server, assertAnswers, assertQuietAndOpen, assertWellFormed, req } from "./helpers/clients";

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
    const pool = new Pool();
    before(() => srv.start());
    after(async () => {
      pool.closeAll();
      await srv.stop();
    });
    afterEach(async () => {
      pool.closeAll();
      await assertAnswers(srv.port);
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
    });
  });
}
