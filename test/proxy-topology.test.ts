// The Fastsocket three-host topology on one machine (issue 13, item 6): three network
// namespaces, client ↔ proxy ↔ backend, joined by two veth pairs with private addresses
// (10.213.1.0/24 client–proxy, 10.213.2.0/24 proxy–backend; the client has no route to the
// backend). The backend vw serves its built-in table in its namespace; two vw proxies in the
// proxy namespace relay to it, one with its keep-alive pool and one with --proxy-fresh; a raw
// client in the client namespace pipelines GETs of every size, a HEAD and POSTs with bodies, and
// every response must come back whole, in order, byte for byte what the backend itself sends.
// Root only; every process is stopped by its PID and the namespaces (with their veths) are
// removed in after(), whatever happened.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";

import { createTopology, netnsProblem, type Topology } from "../bench/lib/netns";
import { SIZED } from "./helpers/clients";
import { metricSum, parseResponse, startVw, which, type Response, type VwProcess } from "./helpers/server";

const BACKEND_PORT = 8085; // fresh namespaces: nothing else listens there
const MODES = [
  { name: "keep-alive pool", port: 8086, mport: 9186, args: ["--proxy-conns", "4"] },
  { name: "--proxy-fresh", port: 8087, mport: 9187, args: ["--proxy-fresh"] },
] as const;

let topo: Topology; // built in before(), removed in after()

/** Why this test cannot run here, or undefined. */
function skipReason(): string | undefined {
  if (!which("ip")) return "ip (iproute2) not installed";
  return netnsProblem() ?? undefined;
}

// A raw client run inside a namespace: connects, writes stdin's bytes at once (pipelined),
// prints everything received until the server closes (exit 0), a socket error (exit 2, the
// error on stderr) or its time limit (exit 3).
const CLIENT = `
const net = require("net");
const [host, port, limit] = process.argv.slice(1);
const input = [];
process.stdin.on("data", (c) => input.push(c));
process.stdin.on("end", () => {
  const got = [];
  let failed = false;
  const done = (code) => process.stdout.write(Buffer.concat(got), () => process.exit(code));
  const s = net.connect({ host, port: Number(port) }, () => s.write(Buffer.concat(input)));
  s.on("data", (d) => got.push(d));
  s.on("error", (e) => { failed = true; process.stderr.write(e.code || e.message); });
  s.on("close", () => done(failed ? 2 : 0));
  setTimeout(() => { process.stderr.write("timeout"); done(3); }, Number(limit));
});`;

interface Exchange {
  code: number | null;
  out: Buffer;
  err: string;
}

/** Sends `data` on one connection from namespace `ns` to host:port; everything that came back. */
function exchange(ns: string, host: string, port: number, data: string | Buffer, limitMs = 15_000): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const child = spawn("ip", ["netns", "exec", ns, process.execPath, "-e", CLIENT, host, String(port), String(limitMs)], { stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let err = "";
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const kill = setTimeout(() => child.kill("SIGKILL"), limitMs + 5000); // by its PID, should the client hang
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(kill);
      resolve({ code, out: Buffer.concat(out), err });
    });
    child.stdin.end(data);
  });
}

const req = (method: string, target: string, extra = ""): string => `${method} ${target} HTTP/1.1\r\nHost: backend.test\r\n${extra}\r\n`;

/** Exactly `n` responses from `buf`, nothing after them (head[i]: the i-th answers a HEAD). */
function parseAll(buf: Buffer, n: number, head: readonly boolean[] = []): Response[] {
  const out: Response[] = [];
  let off = 0;
  for (let i = 0; i < n; i++) {
    const r = parseResponse(buf, off, head[i] ?? false);
    assert.ok(r, `response ${i + 1} of ${n} incomplete; ${buf.length - off} bytes left: ${JSON.stringify(buf.subarray(off, off + 200).toString("latin1"))}`);
    out.push(r);
    off += r.length;
  }
  assert.equal(off, buf.length, `${buf.length - off} bytes after the ${n} responses`);
  return out;
}

/** The proxy's /metrics, asked from its own namespace (HTTP/1.0: the body ends at the close). */
async function proxyMetrics(mport: number): Promise<string> {
  const r = await exchange(topo.ns.proxy, "127.0.0.1", mport, "GET /metrics HTTP/1.0\r\n\r\n");
  assert.equal(r.code, 0, r.err);
  const text = r.out.toString("latin1");
  assert.match(text, /^HTTP\/1\.[01] 200 /);
  return text.slice(text.indexOf("\r\n\r\n") + 4);
}

const skip = skipReason();

describe("three hosts: client, vw proxy and vw backend in three network namespaces joined by veth pairs", { skip }, () => {
  const started: VwProcess[] = [];
  /** What the backend itself answers for each built-in size (fetched from the proxy's namespace). */
  const reference = new Map<string, Buffer>();

  before(async () => {
    topo = createTopology({ prefix: "vt", net: 213 });
    const inNs = (ns: string): { wrap: string[] } => ({ wrap: ["ip", "netns", "exec", ns] });
    // The backend answers only the proxy's address: anything else reaching it is refused.
    started.push(await startVw(["--listen", `${topo.addr.backend}:${BACKEND_PORT}`, "--workers", "1", "--policy", "other", "--allow", `${topo.addr.proxyB}/32`, "--quiet"], inNs(topo.ns.backend)));
    for (const m of MODES) {
      started.push(
        await startVw(
          ["--listen", `${topo.addr.proxyC}:${m.port}`, "--workers", "1", "--policy", "other", "--proxy", `${topo.addr.backend}:${BACKEND_PORT}`, "--metrics", `127.0.0.1:${m.mport}`, "--quiet", ...m.args],
          inNs(topo.ns.proxy),
        ),
      );
    }
    const direct = await exchange(topo.ns.proxy, topo.addr.backend, BACKEND_PORT, SIZED.map(([p], i) => req("GET", p, i === SIZED.length - 1 ? "Connection: close\r\n" : "")).join(""));
    assert.equal(direct.code, 0, `the backend, asked directly from the proxy's namespace: ${direct.err}`);
    parseAll(direct.out, SIZED.length).forEach((r, i) => {
      const [p, size] = SIZED[i]!;
      assert.equal(r.status, 200, p);
      assert.equal(r.body.length, size, p);
      reference.set(p, Buffer.from(r.body));
    });
  });

  after(async () => {
    await Promise.all(started.map((v) => v.stop())); // each by its PID (ip netns exec execs node)
    topo?.destroy();
  });

  it("the client has no route to the backend: everything below goes through the proxy", async () => {
    const r = await exchange(topo.ns.client, topo.addr.backend, BACKEND_PORT, req("GET", "/1b"), 5000);
    assert.equal(r.code, 2, `expected a connect error, got exit ${r.code}: ${r.err}`);
    assert.match(r.err, /ENETUNREACH|EHOSTUNREACH/);
    assert.equal(r.out.length, 0);
  });

  for (const m of MODES) {
    describe(`through vw --proxy (${m.name})`, () => {
      let sent = 0; // requests this proxy relayed, for its counters
      it("pipelined: every built-in size, a HEAD, POSTs with a Content-Length and a chunked body, then close: each whole, in order", async () => {
        const form = "name=vw&topology=three+hosts";
        const plan: { raw: string; status: number; head?: boolean; body?: string }[] = [
          ...SIZED.map(([p]) => ({ raw: req("GET", p), status: 200, body: p })),
          { raw: req("HEAD", "/10k"), status: 200, head: true },
          { raw: req("POST", "/1k", `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\n`) + form, status: 405 },
          { raw: req("POST", "/1k", "Transfer-Encoding: chunked\r\n") + "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", status: 405 },
          ...[...SIZED].reverse().map(([p]) => ({ raw: req("GET", p), status: 200, body: p })),
          { raw: req("GET", "/100b", "Connection: close\r\n"), status: 200, body: "/100b" },
        ];
        const r = await exchange(topo.ns.client, topo.addr.proxyC, m.port, plan.map((x) => x.raw).join(""));
        sent += plan.length;
        assert.equal(r.code, 0, `client: exit ${r.code} ${r.err}`);
        const res = parseAll(r.out, plan.length, plan.map((x) => x.head === true));
        res.forEach((got, i) => {
          const want = plan[i]!;
          const what = `response ${i + 1}: ${want.raw.split("\r\n")[0]}`;
          assert.equal(got.status, want.status, what);
          if (want.body !== undefined) assert.ok(got.body.equals(reference.get(want.body)!), `${what}: body differs from the backend's own (${got.body.length} bytes)`);
          if (want.head === true) assert.equal(got.header("content-length"), String(10 * 1024), what);
          if (want.status === 405) assert.equal(got.header("allow"), "GET, HEAD", what);
        });
        assert.equal(res[res.length - 1]!.header("connection"), "close");
      });

      it("64 pipelined GETs of mixed sizes on one connection come back in the order sent", async () => {
        const sizes = SIZED.map(([p]) => p).filter((p) => p !== "/1m");
        const order = Array.from({ length: 64 }, (_, i) => sizes[(i * 3) % sizes.length]!);
        const raw = order.map((p, i) => req("GET", p, i === order.length - 1 ? "Connection: close\r\n" : "")).join("");
        const r = await exchange(topo.ns.client, topo.addr.proxyC, m.port, raw);
        sent += order.length;
        assert.equal(r.code, 0, `client: exit ${r.code} ${r.err}`);
        parseAll(r.out, order.length).forEach((got, i) => {
          assert.equal(got.status, 200, `response ${i + 1}`);
          assert.ok(got.body.equals(reference.get(order[i]!)!), `response ${i + 1} should be ${order[i]}, got ${got.body.length} bytes`);
        });
      });

      it("the proxy counted its upstream connections to the backend's namespace", async () => {
        const text = await proxyMetrics(m.mport);
        const opened = metricSum(text, "vw_proxy_upstream_connections_total", {});
        const requests = metricSum(text, "vw_requests_total", {});
        assert.equal(requests, sent, "requests counted by the proxy");
        if (m.args[0] === "--proxy-fresh") assert.equal(opened, sent, "--proxy-fresh: an upstream connection per request");
        else assert.ok(opened >= 1 && opened <= 4, `pool of 4: ${opened} upstream connections opened`);
        assert.equal(metricSum(text, "vw_proxy_errors_total", {}), 0, "no 502/504");
      });
    });
  }
});
