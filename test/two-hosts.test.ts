// Two hosts on one machine: two network namespaces joined by a veth pair, vw in one ("the
// server host"), curl, ab and wrk in the other ("the client host"), over IPv4 and IPv6. The
// packets cross a real (virtual) link: neighbour discovery, a device queue, softirq work, and
// --allow and --locality see real peer addresses. Root only; the namespaces are removed after.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";

import { metricSum, sleep, startVw, which, type VwProcess } from "./helpers/server";

const run = promisify(execFile);

const tag = `${process.pid % 100000}`;
const SRV = `vws${tag}`; // namespace and veth names: at most 15 characters
const CLI = `vwc${tag}`;
const V4 = { srv: "10.199.0.1", cli: "10.199.0.2", other: "10.199.0.3" };
const V6 = { srv: "fd00:199::1", cli: "fd00:199::2", other: "fd00:199::3" };
const PORT = 8085; // a fresh namespace: nothing else listens there
const MPORT = 9185;

function ip(...args: string[]): void {
  execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}

/** Why this test cannot run here, or undefined. */
function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root: it creates network namespaces and a veth pair";
  for (const tool of ["ip", "curl"]) if (!which(tool)) return `${tool} not installed`;
  const probe = `vwp${tag}`;
  try {
    ip("netns", "add", probe);
    ip("netns", "del", probe);
  } catch (e) {
    return `cannot create a network namespace here: ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`;
  }
  return undefined;
}

function setUp(): void {
  ip("netns", "add", SRV);
  ip("netns", "add", CLI);
  ip("link", "add", `${SRV}a`, "type", "veth", "peer", "name", `${CLI}a`);
  ip("link", "set", `${SRV}a`, "netns", SRV);
  ip("link", "set", `${CLI}a`, "netns", CLI);
  for (const [ns, dev, v4, v6] of [
    [SRV, `${SRV}a`, [V4.srv], [V6.srv]],
    [CLI, `${CLI}a`, [V4.cli, V4.other], [V6.cli, V6.other]],
  ] as const) {
    ip("-n", ns, "link", "set", "lo", "up");
    for (const a of v4) ip("-n", ns, "addr", "add", `${a}/24`, "dev", dev);
    // The second address is deprecated (preferred_lft 0), so the client's own traffic keeps
    // the first as its source and only `curl --interface` uses the other one.
    for (const [i, a] of v6.entries()) ip("-n", ns, "addr", "add", `${a}/64`, "dev", dev, "nodad", ...(i > 0 ? ["preferred_lft", "0"] : []));
    ip("-n", ns, "link", "set", dev, "up");
  }
}

function tearDown(): void {
  for (const ns of [SRV, CLI]) {
    try {
      ip("netns", "del", ns); // takes its end of the veth pair, and so the pair, with it
    } catch {
      // not created
    }
  }
}

/** A command on the client host. */
function client(cmd: string, args: string[], timeout = 30000): Promise<{ stdout: string; stderr: string }> {
  return run("ip", ["netns", "exec", CLI, cmd, ...args], { timeout });
}

/** What vw's /metrics says, summed over workers: `get(family, labels)`. */
async function metrics(): Promise<{ get(name: string, labels?: Record<string, string>): number }> {
  const { stdout } = await run("ip", ["netns", "exec", SRV, "curl", "-s", `http://127.0.0.1:${MPORT}/metrics`]);
  return { get: (name, labels = {}) => metricSum(stdout, name, labels) };
}

const skip = skipReason();

describe("two hosts: vw and its clients in two network namespaces joined by a veth pair", { skip }, () => {
  let vw: VwProcess;
  before(async () => {
    tearDown();
    setUp();
    vw = await startVw(
      [
        "--listen", `${V4.srv}:${PORT}`, "--listen", `[${V6.srv}]:${PORT}`,
        "--allow", `${V4.cli}/32`, "--allow", V6.cli,
        "--locality", "--quiet", "--metrics", `127.0.0.1:${MPORT}`,
      ],
      { wrap: ["ip", "netns", "exec", SRV] },
    );
  });
  after(async () => {
    await vw?.stop();
    tearDown();
  });

  for (const [family, host, url] of [
    ["IPv4", V4.srv, `http://${V4.srv}:${PORT}`],
    ["IPv6", V6.srv, `http://[${V6.srv}]:${PORT}`],
  ] as const) {
    it(`${family}: curl, then ab without keep-alive and wrk with it, all answered; --locality counts every connection`, { timeout: 60000 }, async () => {
      const before = await metrics();
      const r = await client("curl", ["-s", "-g", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{remote_ip}", `${url}/1k`]);
      assert.equal(r.stdout, `200 1024 ${host}`);
      let requests = 1;
      if (which("ab")) {
        const a = await client("ab", ["-q", "-n", "2000", "-c", "20", `${url}/1b`]);
        assert.match(a.stdout, /Complete requests:\s+2000/);
        assert.match(a.stdout, /Failed requests:\s+0/);
        requests += 2000;
      }
      if (which("wrk")) {
        const w = await client("wrk", ["-t1", "-c20", "-d1s", `${url}/1b`]);
        const n = Number(/(\d+) requests in/.exec(w.stdout)?.[1]);
        assert.ok(n > 100, `wrk: ${w.stdout}`);
        assert.doesNotMatch(w.stdout, /Socket errors|Non-2xx/);
        requests += n;
      }
      await sleep(100);
      const now = await metrics();
      const d = (k: string, labels?: Record<string, string>): number => now.get(k, labels) - before.get(k, labels);
      assert.ok(d("vw_requests_total") >= requests, `vw counted ${d("vw_requests_total")} requests, clients ${requests}`);
      assert.equal(d("vw_connections_rejected_total", { reason: "allow" }), 0);
      assert.equal(
        d("vw_connections_locality_total", { locality: "local" }) + d("vw_connections_locality_total", { locality: "remote" }),
        d("vw_connections_accepted_total"),
        "--locality: one reading per connection",
      );
    });

    it(`${family}: --allow refuses a peer outside it at accept: closed unanswered, counted`, async () => {
      const other = family === "IPv4" ? V4.other : V6.other;
      const before = (await metrics()).get("vw_connections_rejected_total", { reason: "allow" });
      const r = await client("curl", ["-s", "-g", "--interface", other, "-o", "/dev/null", "-w", "%{http_code}", `${url}/1b`]).catch((e: { code?: number; stdout?: string }) => e);
      assert.equal((r as { stdout?: string }).stdout, "000", "no HTTP answer");
      // 52: empty reply (FIN); 56: reset (the request was already there, unread, at the close).
      assert.ok([52, 56].includes((r as { code?: number }).code ?? 0), `curl exit ${(r as { code?: number }).code}: closed at accept`);
      assert.equal(((await metrics()).get("vw_connections_rejected_total", { reason: "allow" })) - before, 1);
    });
  }
});
