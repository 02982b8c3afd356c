// /metrics by the book: promtool accepts it, names carry base units and labels (worker, status
// class, system call kind), every family has real HELP, vw_build_info is there, the query
// string is ignored, and the numbers follow the traffic.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

import { RawClient, freePort, metricSum, parseMetrics, root, startVw, which, type VwProcess } from "./helpers/server";

async function scrape(port: number, pathAndQuery = "/metrics", method = "GET"): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${pathAndQuery}`, { method });
  return { status: res.status, type: res.headers.get("content-type") ?? "", text: await res.text() };
}

/** HELP and TYPE of every family in the text. */
function families(text: string): Map<string, { help: string; type: string }> {
  const out = new Map<string, { help: string; type: string }>();
  for (const m of text.matchAll(/^# HELP (\S+) (.*)$/gm)) out.set(m[1], { help: m[2], type: "" });
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const f = out.get(m[1]);
    assert.ok(f, `TYPE without HELP: ${m[1]}`);
    f.type = m[2];
  }
  return out;
}

describe("/metrics", () => {
  let vw: VwProcess;
  let mport: number;
  before(async () => {
    mport = await freePort();
    vw = await startVw(["--workers", "1", "--quiet", "--metrics", `127.0.0.1:${mport}`]);
  });
  after(async () => {
    await vw?.stop();
  });

  it("passes promtool check metrics", async (t) => {
    const promtool = which("promtool");
    if (!promtool) {
      t.skip("promtool not installed (apt-get install prometheus)");
      return;
    }
    const { text } = await scrape(mport);
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = execFile(promtool, ["check", "metrics"], { timeout: 10000 }, (_err, stdout, stderr) => resolve({ code: p.exitCode, out: stdout + stderr }));
      p.stdin!.end(text);
    });
    assert.equal(r.code, 0, `promtool check metrics:\n${r.out}`);
    assert.equal(r.out.trim(), "", "no lint findings");
  });

  it("names in base units, labels for worker, status class and system call kind, real HELP", async () => {
    const { text, type } = await scrape(mport);
    assert.match(type, /^text\/plain; version=0\.0\.4/);
    const fams = families(text);
    for (const [name, f] of fams) {
      assert.doesNotMatch(name, /_(us|ms|ns|usec|msec|kb|mb)(_|$)/, `${name}: abbreviated or non-base unit`);
      assert.doesNotMatch(name, /_total_total$/, `${name}: doubled suffix`);
      if (f.type === "counter") assert.match(name, /_total$/, `${name}: a counter ends in _total`);
      assert.ok(f.help.length >= 20, `${name}: HELP too thin: ${f.help}`);
      assert.doesNotMatch(f.help, /^Worker counter /, `${name}: placeholder HELP (give it one in native/worker/stats.h)`);
    }
    // One family with labels, not a name per class or kind.
    assert.deepEqual(new Set(parseMetrics(text).filter((s) => s.name === "vw_responses_total").map((s) => s.labels.code)), new Set(["2xx", "3xx", "4xx", "5xx"]));
    const kinds = new Set(parseMetrics(text).filter((s) => s.name === "vw_syscalls_total").map((s) => s.labels.syscall));
    for (const k of ["epoll_wait", "accept", "read", "write", "close", "epoll_ctl", "other"]) assert.ok(kinds.has(k), `syscall="${k}"`);
    assert.ok(![...fams.keys()].some((n) => /^vw_(resp_|sys_)/.test(n)), "no per-class or per-kind names");
    for (const s of parseMetrics(text).filter((x) => x.name.startsWith("vw_") && x.name !== "vw_build_info" && x.name !== "vw_response_tables_retired")) {
      assert.equal(s.labels.worker, "0", `${s.name} has worker="0"`);
    }
    for (const n of ["vw_cpu_seconds_total", "vw_sent_bytes_total", "vw_received_bytes_total", "process_cpu_seconds_total", "process_start_time_seconds", "process_open_fds"]) {
      assert.ok(fams.has(n), `${n} present`);
    }
  });

  it("vw_build_info says which vw and Node", async () => {
    const { text } = await scrape(mport);
    const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { version: string };
    const info = parseMetrics(text).filter((s) => s.name === "vw_build_info");
    assert.equal(info.length, 1);
    assert.equal(info[0].value, 1);
    assert.equal(info[0].labels.version, pkg.version);
    assert.equal(info[0].labels.node, process.version);
    assert.match(info[0].labels.engines, /\bepoll\b/);
  });

  it("the query string is ignored; HEAD has no body; another path is 404", async () => {
    const q = await scrape(mport, "/metrics?x");
    assert.equal(q.status, 200);
    assert.match(q.text, /^vw_requests_total\{worker="0"\} \d+$/m);
    assert.equal((await scrape(mport, "/metrics?name[]=vw_requests_total&x=1")).status, 200);
    const h = await scrape(mport, "/metrics", "HEAD");
    assert.equal(h.status, 200);
    assert.equal(h.text, "");
    assert.equal((await scrape(mport, "/metricsx")).status, 404);
    assert.equal((await scrape(mport, "/")).status, 404);
  });

  it("follows the traffic: requests, status classes, bytes, syscalls by kind", async () => {
    const before = (await scrape(mport)).text;
    const c = await RawClient.connect(vw.port);
    c.write("GET /1k HTTP/1.1\r\nHost: x\r\n\r\n".repeat(3) + "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    const res = await c.responses(4, { timeoutMs: 3000 });
    c.destroy();
    const after = (await scrape(mport)).text;
    const d = (name: string, labels: Record<string, string> = { worker: "0" }): number => metricSum(after, name, labels) - metricSum(before, name, labels);
    assert.equal(d("vw_requests_total"), 4);
    assert.equal(d("vw_responses_total", { worker: "0", code: "2xx" }), 3);
    assert.equal(d("vw_responses_total", { worker: "0", code: "4xx" }), 1);
    assert.equal(d("vw_sent_bytes_total"), res.reduce((n, r) => n + r.length, 0));
    assert.ok(d("vw_syscalls_total", { worker: "0", syscall: "read" }) >= 1);
    assert.ok(d("vw_syscalls_total", { worker: "0", syscall: "write" }) >= 1);
    assert.ok(d("vw_syscalls_total") >= d("vw_syscalls_total", { worker: "0", syscall: "read" }) + 1, "the sum over kinds is the total");
  });
});
