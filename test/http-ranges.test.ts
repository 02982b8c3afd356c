// Byte ranges (RFC 9110 §14): one satisfiable range of a GET is 206 with Content-Range and that
// slice of the stored body; one that selects nothing is 416 with "Content-Range: bytes */N";
// several ranges, an invalid Range, HEAD, or a failed If-Range (§13.1.5) get the whole 200.
// Runs once per engine (one worker) and once with one worker per CPU.
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { MODES, Pool, Server, assertAnswers, assertQuietAndOpen, assertWellFormed } from "./helpers/clients";
import type { RawClient, Response } from "./helpers/server";

const MTIME = new Date("2021-01-01T00:00:00Z");
const LM = "Fri, 01 Jan 2021 00:00:00 GMT";
const BODY = randomBytes(10000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vw-range-"));
fs.writeFileSync(path.join(dir, "data.bin"), BODY);
fs.utimesSync(path.join(dir, "data.bin"), MTIME, MTIME);
fs.writeFileSync(path.join(dir, "empty.txt"), "");
process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));

function get(target: string, fields: string, method = "GET"): string {
  return `${method} ${target} HTTP/1.1\r\nHost: x\r\n${fields}\r\n`;
}

for (const mode of MODES) {
  describe(`ranges (${mode.name})`, () => {
    const srv = new Server([...mode.args, "--quiet", "--no-watch", "--dir", dir]);
    const pool = new Pool();
    let c: RawClient;
    let etag = "";
    const ask = async (target: string, fields: string): Promise<Response> => {
      const r = await c.request(get(target, fields));
      assertWellFormed(r, `${target} ${JSON.stringify(fields)}`);
      return r;
    };
    const partial = async (target: string, range: string, body: Buffer, first: number, last: number, extra = ""): Promise<void> => {
      const r = await ask(target, `Range: ${range}\r\n${extra}`);
      assert.equal(r.status, 206, `${target} Range: ${range} ${extra}`);
      assert.equal(r.reason, "Partial Content");
      assert.equal(r.header("content-range"), `bytes ${first}-${last}/${body.length}`, range);
      assert.equal(Number(r.header("content-length")), last - first + 1);
      assert.ok(r.body.equals(body.subarray(first, last + 1)), `${range}: the slice`);
    };
    const whole = async (target: string, fields: string, body: Buffer): Promise<void> => {
      const r = await ask(target, fields);
      assert.equal(r.status, 200, `${target} ${JSON.stringify(fields)}`);
      assert.equal(r.header("content-range"), undefined);
      assert.ok(r.body.equals(body));
    };
    before(async () => {
      await srv.start();
      c = await pool.connect(srv.port);
      const r = await ask("/data.bin", "");
      etag = r.header("etag")!;
      assert.equal(r.header("accept-ranges"), "bytes");
    });
    after(async () => {
      pool.closeAll();
      await srv.stop();
    });
    afterEach(async () => {
      await assertQuietAndOpen(c, 20);
      await assertAnswers(srv.port);
    });

    it("one satisfiable range: 206, Content-Range, the exact slice (first-last, first-, suffix, clamped)", async () => {
      await partial("/data.bin", "bytes=0-0", BODY, 0, 0);
      await partial("/data.bin", "bytes=0-9", BODY, 0, 9);
      await partial("/data.bin", "bytes=100-2099", BODY, 100, 2099); // above the copy threshold: sent by reference
      await partial("/data.bin", "bytes=9990-", BODY, 9990, 9999);
      await partial("/data.bin", "bytes=-100", BODY, 9900, 9999);
      await partial("/data.bin", "bytes=5000-99999999999999999999999", BODY, 5000, 9999);
      await partial("/data.bin", "bytes=-20000", BODY, 0, 9999);
      await partial("/data.bin", "bytes=9999-9999", BODY, 9999, 9999);
      await partial("/data.bin", "BYTES=1-2", BODY, 1, 2);
      await partial("/data.bin", "bytes=3-4,", BODY, 3, 4); // an empty list element
      await partial("/data.bin", "bytes= 3-4", BODY, 3, 4);
    });

    it("a range of a built-in route, large, pipelined with others", async () => {
      const full = (await ask("/1m", "")).body;
      c.write(get("/1m", "Range: bytes=1000-\r\n") + get("/1m", "Range: bytes=-1\r\n") + get("/1b", ""));
      const [a, b, x] = await c.responses(3, { timeoutMs: 5000 });
      assert.equal(a.status, 206);
      assert.equal(a.header("content-range"), `bytes 1000-${full.length - 1}/${full.length}`);
      assert.ok(a.body.equals(full.subarray(1000)));
      assert.equal(b.header("content-range"), `bytes ${full.length - 1}-${full.length - 1}/${full.length}`);
      assert.equal(x.body.toString(), "x");
    });

    it("a range that selects nothing: 416 with Content-Range: bytes */length, connection kept", async () => {
      for (const [target, range, len] of [
        ["/data.bin", "bytes=10000-", 10000],
        ["/data.bin", "bytes=10000-10001", 10000],
        ["/data.bin", "bytes=-0", 10000],
        ["/empty.txt", "bytes=0-", 0],
        ["/1b", "bytes=1-", 1],
      ] as const) {
        const r = await ask(target, `Range: ${range}\r\n`);
        assert.equal(r.status, 416, `${target} ${range}`);
        assert.equal(r.reason, "Range Not Satisfiable");
        assert.equal(r.header("content-range"), `bytes */${len}`);
        assert.equal(r.header("connection"), undefined);
      }
    });

    it("several ranges, invalid or unknown ranges, and a repeated Range: the whole 200", async () => {
      for (const range of ["bytes=0-1,5-6", "bytes=0-1, -5", "bytes=5-1", "bytes=a-b", "bytes=1", "bytes 0-1", "bytes=0 -1", "items=0-1", "bytes=", "=0-1", "bytes=--1", "bytes=0-1-2"]) {
        await whole("/data.bin", `Range: ${range}\r\n`, BODY);
      }
      await whole("/data.bin", "Range: bytes=0-1\r\nRange: bytes=0-1\r\n", BODY);
      await whole("/empty.txt", "Range: bytes=-5\r\n", Buffer.alloc(0));
    });

    it("HEAD ignores Range; other methods are not served", async () => {
      c.write(get("/data.bin", "Range: bytes=0-9\r\n", "HEAD"));
      const [h] = await c.responses(1, { head: [true] });
      assert.equal(h.status, 200);
      assert.equal(h.header("content-length"), "10000");
      assert.equal(h.header("content-range"), undefined);
    });

    it("If-Range: the same strong ETag, or Last-Modified exactly, honours the range; anything else gets 200", async () => {
      await partial("/data.bin", "bytes=0-9", BODY, 0, 9, `If-Range: ${etag}\r\n`);
      await partial("/data.bin", "bytes=0-9", BODY, 0, 9, `If-Range: ${LM}\r\n`);
      for (const v of ['"other"', `W/${etag}`, "Thu, 31 Dec 2020 23:59:59 GMT", "Sat, 02 Jan 2021 00:00:00 GMT", "not a date", `${etag}, ${etag}`]) {
        await whole("/data.bin", `Range: bytes=0-9\r\nIf-Range: ${v}\r\n`, BODY);
      }
      await whole("/data.bin", `Range: bytes=0-9\r\nIf-Range: ${etag}\r\nIf-Range: ${etag}\r\n`, BODY);
      await whole("/1b", "Range: bytes=0-0\r\nIf-Range: \"x\"\r\n", Buffer.from("x")); // no validator
      const r = await ask("/data.bin", `Range: bytes=10000-\r\nIf-Range: "other"\r\n`);
      assert.equal(r.status, 200, "a failed If-Range means no 416 either");
    });

    it("preconditions come first: 304 and 412 win over Range", async () => {
      c.write(get("/data.bin", `Range: bytes=0-9\r\nIf-None-Match: ${etag}\r\n`));
      assert.equal((await c.responses(1, { head: [true] }))[0].status, 304);
      assert.equal((await ask("/data.bin", 'Range: bytes=0-9\r\nIf-Match: "x"\r\n')).status, 412);
      await partial("/data.bin", "bytes=0-9", BODY, 0, 9, `If-Match: ${etag}\r\n`);
    });

    it("open fds are back to the count right after start", async () => {
      pool.closeAll();
      await srv.assertFdsAtBaseline();
      c = await pool.connect(srv.port); // afterEach checks it
    });
  });
}
