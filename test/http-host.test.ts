// Host (RFC 9112 §3.2): a value outside `uri-host [ ":" port ]` (RFC 3986 §3.2.2, §3.2.3), or
// more than one Host line, gets 400 and a close; every value inside the grammar is served, the
// connection kept. The authority of an absolute-form target is held to the same grammar.
// Runs once per engine (one worker) and once with one worker per CPU.
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";

import { MODES, Pool, Server, assertAnswers, assertQuietAndOpen, assertWellFormed, expectErrorClose, req } from "./helpers/clients";

const FOLLOW = req("GET", "/1b"); // pipelined after a bad request: must never be answered

function withHost(host: string, version = "HTTP/1.1", target = "/1b"): string {
  return `GET ${target} ${version}\r\nHost: ${host}\r\n\r\n`;
}

/** Values inside the grammar: reg-names, IPv4, IP-literals (IPv6, IPvFuture), ports. */
export const VALID_HOSTS: ReadonlyArray<string> = [
  "example.com",
  "example.com:8085",
  "EXAMPLE.com:80",
  "example.com:", // port = *DIGIT: empty is allowed
  "", // RFC 9112 §3.2: the target had no authority
  ":80", // reg-name may be empty
  "127.0.0.1",
  "127.0.0.1:8085",
  "999.1.1.1", // not an IPv4address, but a valid reg-name
  "localhost:00080",
  "a-b_c~d.e",
  "ex%41mple.com", // pct-encoded
  "a!$&'()*+,;=b", // sub-delims
  "xn--nxasmq6b.example",
  "[::1]",
  "[::1]:8085",
  "[::1]:",
  "[::]",
  "[2001:db8::1]",
  "[2001:DB8:0:0:8:800:200C:417A]",
  "[1:2:3:4:5:6:7:8]",
  "[1:2:3:4:5:6:7::]",
  "[::2:3:4:5:6:7:8]",
  "[::ffff:192.0.2.1]",
  "[1:2:3:4:5:6:1.2.3.4]",
  "[v1.fe80::a+en1]", // IPvFuture
  "[V7.x:y]",
];

/** Values outside it. */
export const INVALID_HOSTS: ReadonlyArray<string> = [
  "exa mple.com",
  "vw.test/path",
  "vw.test?q",
  "vw.test#f",
  "user@vw.test",
  "user:pw@vw.test:80",
  "vw.test:8o",
  "vw.test:80:80",
  "vw.test:-1",
  "vw.test:+80",
  "vw.test: 80",
  "a\\b",
  'a"b',
  "a<b>",
  "a|b",
  "a^b",
  "a{b}",
  "a[b]",
  "a%zz",
  "a%4",
  "a%",
  "caf\u00e9.example", // raw non-ASCII: a reg-name must percent-encode it
  "::1", // an IPv6 address needs its brackets
  "[::1",
  "::1]",
  "[::1]x",
  "[::1]:a",
  "[]",
  "[1:2:3:4:5:6:7:8:9]",
  "[1:2:3:4:5:6:7]",
  "[::1::]",
  "[:::]",
  "[1:::2]",
  "[12345::]",
  "[g::1]",
  "[::1.2.3]",
  "[::1.2.3.256]",
  "[::01.2.3.4]",
  "[1.2.3.4::]",
  "[1:2:3:4:5:6:7:1.2.3.4]",
  "[fe80::1%25eth0]", // zone identifiers are not part of a URI's host
  "[v.x]",
  "[v1.]",
  "[v1x]",
  "[vg.x]",
  "[[::1]]",
  "a\tb",
];

for (const mode of MODES) {
  describe(`Host (${mode.name})`, () => {
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

    it("every value inside the grammar is served on one kept connection (HTTP/1.1 and 1.0)", async () => {
      const c = await pool.connect(srv.port);
      for (const host of VALID_HOSTS) {
        const r = await c.request(withHost(host));
        assertWellFormed(r, JSON.stringify(host));
        assert.equal(r.status, 200, `Host: ${JSON.stringify(host)}: got ${r.raw.split("\r\n")[0]}`);
        assert.equal(r.header("connection"), undefined, `Host: ${JSON.stringify(host)} keeps the connection`);
      }
      for (const host of ["example.com", "[::1]:80", ""]) {
        const r = await c.request(withHost(host, "HTTP/1.0").replace("\r\n\r\n", "\r\nConnection: keep-alive\r\n\r\n"));
        assert.equal(r.status, 200, `HTTP/1.0 Host: ${JSON.stringify(host)}`);
      }
      await assertQuietAndOpen(c);
    });

    for (const host of INVALID_HOSTS) {
      it(`Host: ${JSON.stringify(host)} → 400 and close`, async () => {
        await expectErrorClose(pool, srv.port, Buffer.from(withHost(host) + FOLLOW, "utf8"), 400);
      });
    }

    it("an invalid Host is refused in HTTP/1.0 too, and with any method", async () => {
      await expectErrorClose(pool, srv.port, withHost("a b", "HTTP/1.0") + FOLLOW, 400);
      await expectErrorClose(pool, srv.port, "POST /1b HTTP/1.1\r\nHost: a/b\r\nContent-Length: 0\r\n\r\n" + FOLLOW, 400);
      await expectErrorClose(pool, srv.port, "HEAD /1b HTTP/1.1\r\nHost: a@b\r\n\r\n" + FOLLOW, 400);
    });

    it("more than one Host line → 400 and close, even when both are valid or equal", async () => {
      await expectErrorClose(pool, srv.port, "GET /1b HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n" + FOLLOW, 400);
      await expectErrorClose(pool, srv.port, "GET /1b HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nhOST: b\r\n\r\n" + FOLLOW, 400);
      await expectErrorClose(pool, srv.port, "GET /1b HTTP/1.1\r\nHost: \r\nHost: \r\n\r\n" + FOLLOW, 400);
    });

    it("the Host value's surrounding whitespace is not part of it (OWS)", async () => {
      const c = await pool.connect(srv.port);
      const r = await c.request("GET /1b HTTP/1.1\r\nHost: \t example.com:80 \t\r\n\r\n");
      assert.equal(r.status, 200);
      await assertQuietAndOpen(c);
    });

    it("an absolute-form target's authority follows the same grammar, and must name a host", async () => {
      const c = await pool.connect(srv.port);
      for (const target of ["http://h/1b", "http://[::1]:80/1b", "http://h:/1b", "http://1.2.3.4/1b"]) {
        const r = await c.request(withHost("h", "HTTP/1.1", target));
        assert.equal(r.status, 200, target);
      }
      for (const target of ["http:///1b", "http://:80/1b", "http://u@h/1b", "http://h:x/1b", "http://[::1/1b", "http://h%/1b"]) {
        await expectErrorClose(pool, srv.port, withHost("h", "HTTP/1.1", target) + FOLLOW, 400);
      }
      await assertQuietAndOpen(c);
    });

    it("open fds are back to the count right after start", async () => {
      pool.closeAll();
      await srv.assertFdsAtBaseline();
    });
  });
}
