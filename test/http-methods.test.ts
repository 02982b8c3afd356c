// HTTP routes and methods: the built-in bodies, the headers every response carries, HEAD,
// query strings and absolute-form targets, 404, 405 with Allow, 501, and the HTTP/1.1 status
// line also for HTTP/1.0 requests. Runs once with one worker and once with one per CPU.
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { sleep } from "./helpers/server";
import {
  GET_1B,
  MODES,
  Pool,
  SIZED,
  Server,
  TEXT_PLAIN,
  assertAnswers,
  assertQuietAndOpen,
  assertWellFormed,
  expectErrorClose,
  req,
} from "./helpers/clients";

const ALL_ROUTES: ReadonlyArray<string> = ["/", ...SIZED.map(([p]) => p)];

for (const mode of MODES) {
  describe(`routes and methods (${mode.name})`, () => {
    const srv = new Server(mode.args);
    const pool = new Pool();
    before(() => srv.start());
    after(() => srv.stop());
    afterEach(async () => {
      pool.closeAll();
      await assertAnswers(srv.port);
    });

    describe("routes", () => {
      it("every sized route: 200, exact body length, Content-Length, Server, Date, Content-Type", async () => {
        const c = await pool.connect(srv.port);
        for (const [path, size] of SIZED) {
          const r = await c.request(req("GET", path), { timeoutMs: 2000 });
          assertWellFormed(r, path);
          assert.equal(r.status, 200, path);
          assert.equal(r.reason, "OK", path);
          assert.equal(r.header("content-length"), String(size), path);
          assert.equal(r.body.length, size, path);
          assert.equal(r.header("content-type"), TEXT_PLAIN, path);
          assert.equal(r.header("connection"), undefined, `${path}: no Connection header on HTTP/1.1 keep-alive`);
        }
        await assertQuietAndOpen(c);
      });

      it("/ is 200 with a text body whose length is its Content-Length", async () => {
        const c = await pool.connect(srv.port);
        const r = await c.request(req("GET", "/"));
        assertWellFormed(r, "/");
        assert.equal(r.status, 200);
        assert.equal(r.header("content-type"), TEXT_PLAIN);
        assert.ok(r.body.length > 0, "/ has a body");
        assert.equal(r.body.length, Number(r.header("content-length")));
        await assertQuietAndOpen(c);
      });

      it("two responses at least 2.1 s apart carry different Dates", async () => {
        const c = await pool.connect(srv.port);
        const r1 = await c.request(GET_1B);
        await sleep(2100);
        const r2 = await c.request(GET_1B);
        assertWellFormed(r1, "first");
        assertWellFormed(r2, "second");
        const d = new Date(r2.header("date")!).getTime() - new Date(r1.header("date")!).getTime();
        assert.notEqual(r2.header("date"), r1.header("date"), "the Date header is refreshed");
        assert.ok(d >= 2000 && d <= 4000, `Dates ${r1.header("date")} and ${r2.header("date")} are ${d} ms apart`);
      });

      it("a query string is ignored", async () => {
        const c = await pool.connect(srv.port);
        const plain = await c.request(req("GET", "/100b"));
        for (const [target, path, size] of [
          ["/1b?x=1", "/1b", 1],
          ["/1b?", "/1b", 1],
          ["/100b?a=b&c=/1m", "/100b", 100],
          ["/1k?x", "/1k", 1024],
        ] as const) {
          const r = await c.request(req("GET", target));
          assertWellFormed(r, target);
          assert.equal(r.status, 200, `${target} is ${path}`);
          assert.equal(r.body.length, size, target);
          assert.equal(r.header("content-length"), String(size), target);
          if (path === "/100b") assert.deepEqual(r.body, plain.body, "same body as without the query");
        }
        const nope = await c.request(req("GET", "/nope?x=/1b"));
        assert.equal(nope.status, 404, "the path, not the query, picks the route");
        await assertQuietAndOpen(c);
      });

      it("absolute-form targets are served by their path", async () => {
        const c = await pool.connect(srv.port);
        const cases: [string, number, number | undefined][] = [
          ["http://h/1b", 200, 1],
          ["http://h:8085/100b?q=1", 200, 100],
          ["HTTP://h/1k", 200, 1024],
          ["http://h", 200, undefined], // the index
          ["http://h/nope", 404, undefined],
        ];
        for (const [target, status, size] of cases) {
          const r = await c.request(`GET ${target} HTTP/1.1\r\nHost: h\r\n\r\n`);
          assertWellFormed(r, target);
          assert.equal(r.status, status, target);
          if (size !== undefined) assert.equal(r.body.length, size, target);
        }
        await assertQuietAndOpen(c);
      });

      it("an unknown path is 404 and the connection stays open", async () => {
        const c = await pool.connect(srv.port);
        for (const path of ["/nope", "/1B", "/1b/", "//1b", "/1b.html", "/1m0", "/%31b%31"]) {
          const r = await c.request(req("GET", path));
          assertWellFormed(r, path);
          assert.equal(r.status, 404, path);
          assert.equal(r.reason, "Not Found");
          assert.equal(r.header("content-type"), TEXT_PLAIN);
          assert.equal(r.header("connection"), undefined, `${path}: a 404 keeps the connection`);
          assert.equal(r.body.length, Number(r.header("content-length")));
          const ok = await c.request(GET_1B);
          assert.equal(ok.status, 200, `GET /1b after ${path} on the same connection`);
          assert.equal(ok.body.length, 1);
        }
        await assertQuietAndOpen(c);
      });
    });

    describe("HEAD", () => {
      it("the same head as GET and no body bytes at all (a pipelined GET follows cleanly)", async () => {
        const c = await pool.connect(srv.port);
        for (const path of [...ALL_ROUTES, "/nope"]) {
          const get = await c.request(req("GET", path), { timeoutMs: 2000 });
          c.write(req("HEAD", path) + GET_1B);
          const [head, next] = await c.responses(2, { head: [true, false], timeoutMs: 2000 });
          assertWellFormed(head, `HEAD ${path}`);
          assert.equal(head.status, get.status, `HEAD ${path} status`);
          assert.equal(head.header("content-length"), get.header("content-length"), `HEAD ${path} Content-Length`);
          assert.equal(head.header("content-type"), get.header("content-type"), `HEAD ${path} Content-Type`);
          assert.equal(head.header("connection"), undefined);
          assert.equal(next.status, 200, `GET /1b right after HEAD ${path}: ${next.raw.split("\r\n")[0]}`);
          assert.equal(next.body.length, 1);
          await assertQuietAndOpen(c, 50);
        }
      });

      it("a pipelined batch of HEAD and GET is answered in order", async () => {
        const c = await pool.connect(srv.port);
        const batch: [string, string][] = [];
        for (let i = 0; i < 16; i++) batch.push([i % 2 ? "HEAD" : "GET", SIZED[i % 5][0]]);
        c.write(batch.map(([m, p]) => req(m, p)).join(""));
        const rs = await c.responses(batch.length, { head: batch.map(([m]) => m === "HEAD"), timeoutMs: 2000 });
        rs.forEach((r, i) => {
          const [m, p] = batch[i];
          const size = SIZED.find(([q]) => q === p)![1];
          assert.equal(r.status, 200, `${m} ${p}`);
          assert.equal(r.header("content-length"), String(size), `${m} ${p}`);
          assert.equal(r.body.length, m === "HEAD" ? 0 : size, `${m} ${p}`);
        });
        await assertQuietAndOpen(c);
      });
    });

    describe("methods", () => {
      for (const method of ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT"]) {
        it(`${method} → 405 with Allow: GET, HEAD, connection kept`, async () => {
          const c = await pool.connect(srv.port);
          const r = await c.request(req(method, "/1b"));
          assertWellFormed(r, method);
          assert.equal(r.status, 405, method);
          assert.equal(r.reason, "Method Not Allowed");
          assert.equal(r.header("allow"), "GET, HEAD");
          assert.equal(r.header("connection"), undefined);
          assert.equal(r.body.length, Number(r.header("content-length")));
          const ok = await c.request(GET_1B);
          assert.equal(ok.status, 200, `GET /1b after ${method}`);
          await assertQuietAndOpen(c);
        });
      }

      it("OPTIONS * (asterisk-form) → 405 with Allow", async () => {
        const c = await pool.connect(srv.port);
        const r = await c.request("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
        assert.equal(r.status, 405);
        assert.equal(r.header("allow"), "GET, HEAD");
        await assertQuietAndOpen(c);
      });

      it("CONNECT in authority-form (the form CONNECT uses, RFC 9112 §3.2.3) → 405 with Allow", async () => {
        const c = await pool.connect(srv.port);
        const r = await c.request("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
        assertWellFormed(r, "CONNECT");
        assert.equal(r.status, 405, `CONNECT example.com:443: got ${r.raw.split("\r\n")[0]}`);
        assert.equal(r.header("allow"), "GET, HEAD");
      });

      it("an unknown token method → 501, connection kept", async () => {
        const c = await pool.connect(srv.port);
        // Methods are case-sensitive (RFC 9110 §9.1): "get" is not GET.
        for (const method of ["FOO", "get", "Head", "PROPFIND", "X-CUSTOM_1!"]) {
          const r = await c.request(req(method, "/1b"));
          assertWellFormed(r, method);
          assert.equal(r.status, 501, method);
          assert.equal(r.reason, "Not Implemented");
          assert.equal(r.header("allow"), undefined);
          assert.equal(r.header("connection"), undefined, method);
          const ok = await c.request(GET_1B);
          assert.equal(ok.status, 200, `GET /1b after ${method}`);
        }
        await assertQuietAndOpen(c);
      });

      for (const method of ["GE(T", 'G"ET', "GE\x01T", "GET\t", "G[E]T", "GÉT", "GET/"]) {
        it(`a method with a non-token byte (${JSON.stringify(method)}) → 400 and close`, async () => {
          await expectErrorClose(pool, srv.port, Buffer.from(`${method} /1b HTTP/1.1\r\nHost: x\r\n\r\n`, "latin1"), 400);
        });
      }
    });

    describe("HTTP/1.0 requests", () => {
      it("are answered with an HTTP/1.1 status line, whatever the status", async () => {
        for (const [method, path, status] of [
          ["GET", "/1b", 200],
          ["HEAD", "/1k", 200],
          ["GET", "/nope", 404],
          ["POST", "/1b", 405],
          ["FOO", "/1b", 501],
        ] as const) {
          const c = await pool.connect(srv.port);
          c.write(`${method} ${path} HTTP/1.0\r\n\r\n`);
          const [r] = await c.responses(1, { head: [method === "HEAD"], timeoutMs: 2000 });
          assertWellFormed(r, `${method} ${path} HTTP/1.0`);
          assert.equal(r.status, status, `${method} ${path} HTTP/1.0`);
          assert.equal(r.header("connection"), "close");
          await c.waitClosed(2000);
          assert.equal(c.received.length, 0);
        }
      });
    });

    it("open fds are back to the count right after start", async () => {
      pool.closeAll();
      await srv.assertFdsAtBaseline();
    });
  });
}
