// Preconditions (RFC 9110 §13.1) in the order of §13.2.2, with strong (If-Match, If-Range) and
// weak (If-None-Match) comparison (§8.8.3.2), on --dir files and built-in routes; which
// responses carry --header (2xx, 304) and --header-always (all).
// Runs once per engine (one worker) and once with one worker per CPU.
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { MODES, Pool, Server, assertAnswers, assertQuietAndOpen, assertWellFormed } from "./helpers/clients";
import type { RawClient, Response } from "./helpers/server";
import { rfc850 } from "./http-dates.test";

const MTIME = new Date("2021-01-01T00:00:00Z");
const LM = "Fri, 01 Jan 2021 00:00:00 GMT";
const BEFORE = "Thu, 31 Dec 2020 23:59:59 GMT";
const AFTER = "Sat, 02 Jan 2021 00:00:00 GMT";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vw-cond-"));
fs.writeFileSync(path.join(dir, "style.css"), "body { color: red }\n");
fs.utimesSync(path.join(dir, "style.css"), MTIME, MTIME);
process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));

function get(target: string, fields: string, method = "GET"): string {
  return `${method} ${target} HTTP/1.1\r\nHost: x\r\n${fields}\r\n`;
}

for (const mode of MODES) {
  describe(`preconditions (${mode.name})`, () => {
    const srv = new Server([...mode.args, "--quiet", "--no-watch", "--dir", dir, "-H", "Cache-Control: max-age=60", "--header-always", "X-Always: yes"]);
    const pool = new Pool();
    let etag = "";
    let c: RawClient;
    const ask = async (target: string, fields: string, method = "GET"): Promise<Response> => {
      const r = await c.request(get(target, fields, method), { head: method === "HEAD" });
      assertWellFormedish(r);
      return r;
    };
    before(async () => {
      await srv.start();
      c = await pool.connect(srv.port);
      etag = (await ask("/style.css", "")).header("etag")!;
      assert.match(etag, /^"[^"]+"$/);
    });
    after(async () => {
      pool.closeAll();
      await srv.stop();
    });
    afterEach(async () => {
      await assertQuietAndOpen(c, 20);
      await assertAnswers(srv.port);
    });

    it("If-Match: a listed strong match, or *, proceeds (200); no match or a weak tag is 412", async () => {
      for (const v of [etag, `"a", ${etag}`, `${etag},"b"`, "*", `"a,b", ${etag}`]) assert.equal((await ask("/style.css", `If-Match: ${v}\r\n`)).status, 200, v);
      for (const v of ['"zzz"', `W/${etag}`, '"a", "b"', "", "garbage", `${etag.slice(0, -1)}`]) {
        const r = await ask("/style.css", `If-Match: ${v}\r\n`);
        assert.equal(r.status, 412, `If-Match: ${v}`);
        assert.equal(r.reason, "Precondition Failed");
      }
      assert.equal((await ask("/style.css", `If-Match: "zzz"\r\nIf-Match: ${etag}\r\n`)).status, 200, "two lines form one list");
    });

    it("If-Unmodified-Since: modified after it is 412, else 200; ignored when invalid, repeated, or with If-Match", async () => {
      assert.equal((await ask("/style.css", `If-Unmodified-Since: ${BEFORE}\r\n`)).status, 412);
      assert.equal((await ask("/style.css", `If-Unmodified-Since: ${LM}\r\n`)).status, 200);
      assert.equal((await ask("/style.css", `If-Unmodified-Since: ${AFTER}\r\n`)).status, 200);
      assert.equal((await ask("/style.css", "If-Unmodified-Since: yesterday\r\n")).status, 200);
      assert.equal((await ask("/style.css", `If-Unmodified-Since: ${BEFORE}\r\nIf-Unmodified-Since: ${BEFORE}\r\n`)).status, 200);
      assert.equal((await ask("/style.css", `If-Match: ${etag}\r\nIf-Unmodified-Since: ${BEFORE}\r\n`)).status, 200, "If-Match decides");
      // A two-digit year 51 years ahead is the century before (RFC 9110 §5.6.7): before Last-Modified.
      const y = new Date().getUTCFullYear();
      assert.equal((await ask("/style.css", `If-Unmodified-Since: ${rfc850(new Date(Date.UTC(y - 49, 5, 15)))}\r\n`)).status, 412);
    });

    it("If-None-Match (weak comparison) and If-Modified-Since give 304; If-None-Match decides when both are there", async () => {
      for (const v of [etag, `W/${etag}`, `"x", ${etag}`, "*", `"a,b", W/${etag}`]) {
        const r = await ask("/style.css", `If-None-Match: ${v}\r\n`);
        assert.equal(r.status, 304, v);
        assert.equal(r.header("etag"), etag);
        assert.equal(r.header("last-modified"), LM);
        assert.equal(r.header("content-length"), undefined);
      }
      assert.equal((await ask("/style.css", `If-None-Match: "x"\r\nIf-None-Match: ${etag}\r\n`)).status, 304, "two lines form one list");
      assert.equal((await ask("/style.css", 'If-None-Match: "x"\r\n')).status, 200);
      assert.equal((await ask("/style.css", `If-None-Match: "x"\r\nIf-Modified-Since: ${AFTER}\r\n`)).status, 200);
      assert.equal((await ask("/style.css", `If-None-Match: ${etag}\r\nIf-Modified-Since: ${BEFORE}\r\n`)).status, 304);
      assert.equal((await ask("/style.css", `If-Modified-Since: ${AFTER}\r\n`)).status, 304);
      assert.equal((await ask("/style.css", `If-None-Match: ${etag}\r\n`, "HEAD")).status, 304);
    });

    it("the order of RFC 9110 §13.2.2: a failed If-Match or If-Unmodified-Since wins over a matching If-None-Match", async () => {
      assert.equal((await ask("/style.css", `If-Match: "zzz"\r\nIf-None-Match: ${etag}\r\n`)).status, 412);
      assert.equal((await ask("/style.css", `If-Unmodified-Since: ${BEFORE}\r\nIf-Modified-Since: ${AFTER}\r\n`)).status, 412);
      assert.equal((await ask("/style.css", `If-Match: ${etag}\r\nIf-None-Match: ${etag}\r\n`)).status, 304);
      assert.equal((await ask("/style.css", `If-Match: "zzz"\r\n`, "HEAD")).status, 412);
    });

    it("built-in routes: only * can match (no validators), dates are ignored", async () => {
      assert.equal((await ask("/1b", "If-Match: *\r\n")).status, 200);
      assert.equal((await ask("/1b", 'If-Match: "x"\r\n')).status, 412);
      assert.equal((await ask("/1b", "If-None-Match: *\r\n")).status, 304);
      assert.equal((await ask("/1b", 'If-None-Match: "x"\r\n')).status, 200);
      assert.equal((await ask("/1b", `If-Modified-Since: ${AFTER}\r\n`)).status, 200);
      assert.equal((await ask("/1b", `If-Unmodified-Since: ${BEFORE}\r\n`)).status, 200);
    });

    it("preconditions are ignored where the answer would not be 2xx (404, 405)", async () => {
      assert.equal((await ask("/nope", 'If-Match: "x"\r\n')).status, 404);
      assert.equal((await c.request(`POST /style.css HTTP/1.1\r\nHost: x\r\nIf-Match: "x"\r\nContent-Length: 0\r\n\r\n`)).status, 405);
    });

    it("--header goes on 2xx and 304 only; --header-always on every response", async () => {
      const seen: [number, Response][] = [];
      seen.push([200, await ask("/style.css", "")]);
      seen.push([200, await ask("/1b", "")]);
      seen.push([304, await ask("/style.css", `If-None-Match: ${etag}\r\n`)]);
      seen.push([304, await ask("/1b", "If-None-Match: *\r\n")]);
      seen.push([206, await ask("/style.css", "Range: bytes=0-3\r\n")]);
      seen.push([412, await ask("/style.css", 'If-Match: "zzz"\r\n')]);
      seen.push([416, await ask("/style.css", "Range: bytes=9999-\r\n")]);
      seen.push([404, await ask("/nope", "")]);
      seen.push([405, await c.request(`DELETE /1b HTTP/1.1\r\nHost: x\r\n\r\n`)]);
      seen.push([501, await c.request(`BREW /1b HTTP/1.1\r\nHost: x\r\n\r\n`)]);
      for (const [status, r] of seen) {
        assert.equal(r.status, status);
        assert.equal(r.header("x-always"), "yes", `--header-always on ${status}`);
        const cacheable = status < 300 || status === 304;
        assert.equal(r.header("cache-control"), cacheable ? "max-age=60" : undefined, `--header on ${status}`);
      }
      for (const raw of [`GET /1b HTTP/1.1\r\nHost: x\r\nX-A: \x01\r\n\r\n`, `GET /1b HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(9000)}\r\n\r\n`]) {
        const e = await pool.connect(srv.port);
        e.write(raw);
        const [r] = await e.responses(1);
        assert.ok(r.status === 400 || r.status === 431);
        assert.equal(r.header("cache-control"), undefined, `no --header on ${r.status}`);
        assert.equal(r.header("x-always"), "yes");
        await e.waitClosed();
      }
    });

    it("open fds are back to the count right after start", async () => {
      pool.closeAll();
      await srv.assertFdsAtBaseline();
      c = await pool.connect(srv.port); // afterEach checks it
    });
  });
}

function assertWellFormedish(r: Response): void {
  if (r.status === 304) {
    assert.equal(r.version, "HTTP/1.1");
    assert.equal(r.header("server"), "vw");
    assert.ok(r.header("date"));
    return;
  }
  assertWellFormed(r);
}
