// --access-log: a line per response in common or combined log format, written by the vw-log
// thread from per-worker rings, so a worker makes no system call for it; SIGUSR1 reopens the file.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";

import { allowedCpus, formatCpuList } from "../src/cpu";
import { engineList, engineSkip } from "./helpers/engines";
import { taskStatus } from "./helpers/proc";
import { RawClient, freePort, metricValue, runVw, sleep, startVw, which, type VwProcess } from "./helpers/server";

const run = promisify(execFile);

// host ident user [time] "request line" status bytes "referer" "user-agent"
const COMBINED = /^(\S+) - - \[(\d\d)\/(\w{3})\/(\d{4}):(\d\d):(\d\d):(\d\d) \+0000\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"$/;
const COMMON = /^(\S+) - - \[(\d\d)\/(\w{3})\/(\d{4}):(\d\d):(\d\d):(\d\d) \+0000\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-)$/;

let dir = "";
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "vw-log-"));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function lines(file: string): string[] {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "");
}

/** Waits until `file` holds `n` lines (vw-log drains every 10 ms); returns them. */
async function waitLines(file: string, n: number, timeoutMs = 5000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let got = lines(file);
  while (got.length < n && Date.now() < deadline) {
    await sleep(25);
    got = lines(file);
  }
  return got;
}

async function answer(port: number, raw: string, host = "127.0.0.1"): Promise<void> {
  const c = await RawClient.connect(port, host);
  try {
    c.write(raw);
    await c.responses(1, { timeoutMs: 2000, head: [raw.startsWith("HEAD")] });
  } finally {
    c.destroy();
  }
}

const ab = which("ab");

describe("--access-log: 10,000 requests, 10,000 lines", () => {
  for (const engine of engineList()) {
    it(`--engine ${engine}: ab -k -n 10000 -c 10 gives 10,000 combined lines with its fields, none dropped`, { skip: engineSkip(engine) ?? (ab ? false : "ab not installed (apt-get install apache2-utils)"), timeout: 60000 }, async () => {
      const file = path.join(dir, `ab-${engine}.log`);
      const mport = await freePort();
      const vw = await startVw(["--engine", engine, "--workers", "1", "--quiet", "--access-log", file, "--metrics", `127.0.0.1:${mport}`]);
      try {
        const t0 = Math.floor(Date.now() / 1000);
        const r = await run(ab!, ["-k", "-q", "-n", "10000", "-c", "10", `http://127.0.0.1:${vw.port}/1b`], { timeout: 40000 });
        assert.match(r.stdout, /Complete requests:\s+10000/);
        const got = await waitLines(file, 10000);
        const dropped = await metricValue(mport, "vw_access_log_dropped_total");
        assert.equal(got.length, 10000, `${got.length} lines for 10,000 requests (${dropped} records counted as dropped)`);
        assert.equal(dropped, 0);
        for (const line of got) {
          const m = COMBINED.exec(line);
          assert.ok(m, `not combined log format: ${line}`);
          assert.equal(m[1], "127.0.0.1");
          assert.equal(m[8], "GET /1b HTTP/1.0"); // ab speaks HTTP/1.0 (with keep-alive)
          assert.equal(m[9], "200");
          assert.equal(m[10], "1");
          assert.equal(m[11], "-");
          assert.match(m[12], /^ApacheBench\//);
        }
        const first = COMBINED.exec(got[0])!;
        const when = Date.UTC(Number(first[4]), ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].indexOf(first[3]), Number(first[2]), Number(first[5]), Number(first[6]), Number(first[7])) / 1000;
        assert.ok(Math.abs(when - t0) <= 2, `the first line's time ${first.slice(2, 8).join(" ")} is now`);
      } finally {
        await vw.stop();
      }
    });
  }
});

describe("--access-log: vw-log and the workers' CPUs", () => {
  const cpus = allowedCpus();
  it("vw-log runs on the CPUs without a worker, all of them; with a worker on every CPU, anywhere", { skip: cpus.length < 2 ? "needs two CPUs" : false }, async () => {
    const last = cpus[cpus.length - 1];
    for (const [args, want] of [
      [["--workers", "1", "--cpus", String(last)], cpus.filter((c) => c !== last)],
      [[], cpus],
    ] as [string[], number[]][]) {
      const vw = await startVw([...args, "--quiet", "--access-log", path.join(dir, "cpus.log")]);
      try {
        const log = fs.readdirSync(`/proc/${vw.pid}/task`).map(Number).find((t) => taskStatus(vw.pid, t).get("Name") === "vw-log");
        assert.ok(log !== undefined, "a vw-log thread");
        assert.equal(taskStatus(vw.pid, log).get("Cpus_allowed_list"), formatCpuList(want), `vw-log's CPUs with ${args.join(" ") || "a worker per CPU"}`);
      } finally {
        await vw.stop();
      }
    }
  });
});

describe("--access-log fields", () => {
  let vw: VwProcess;
  const file = (): string => path.join(dir, "fields.log");
  before(async () => {
    vw = await startVw(["--workers", "1", "--quiet", "--access-log", file()]);
  });
  after(() => vw.stop());

  it("status, bytes, method, query, Referer and User-Agent as sent; quotes and control bytes escaped", async () => {
    await answer(vw.port, "GET /1k?a=1 HTTP/1.1\r\nHost: x\r\nReferer: http://r.example/p\r\nUser-Agent: tester/1.0\r\n\r\n");
    await answer(vw.port, "HEAD /missing HTTP/1.1\r\nHost: x\r\n\r\n");
    await answer(vw.port, "DELETE /1b HTTP/1.1\r\nHost: x\r\nUser-Agent: say \"hi\" \\o/\r\n\r\n");
    await answer(vw.port, "GET /\x7f\"x HTTP/1.1\r\nHost: x\r\n\r\n"); // a bad request line: 400
    const got = await waitLines(file(), 4);
    assert.equal(got.length, 4, got.join("\n"));
    const [a, b, c, d] = got.map((l) => COMBINED.exec(l));
    assert.ok(a && b && c && d, got.join("\n"));
    assert.deepEqual([a[8], a[9], a[10], a[11], a[12]], ["GET /1k?a=1 HTTP/1.1", "200", "1024", "http://r.example/p", "tester/1.0"]);
    assert.deepEqual([b[8], b[9], b[10]], ["HEAD /missing HTTP/1.1", "404", "-"], "HEAD: no body bytes");
    assert.deepEqual([c[8], c[9], c[12]], ["DELETE /1b HTTP/1.1", "405", 'say \\"hi\\" \\\\o/']);
    assert.equal(d[9], "400");
    assert.equal(d[8], 'GET /\\x7F\\"x HTTP/1.1');
    assert.equal(got.join("\n").includes("\x7f"), false, "no raw control byte reaches the file");
  });

  it("SIGUSR1 reopens the file: lines before go to the moved file, lines after to a new one", async () => {
    await sleep(100);
    const before = lines(file()).length;
    await answer(vw.port, "GET /1b?before HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.equal((await waitLines(file(), before + 1)).length, before + 1);
    const moved = `${file()}.1`;
    fs.renameSync(file(), moved);
    vw.child.kill("SIGUSR1");
    const deadline = Date.now() + 2000;
    while (!fs.existsSync(file()) && Date.now() < deadline) await sleep(10);
    assert.ok(fs.existsSync(file()), "the file was created again");
    await answer(vw.port, "GET /1b?after HTTP/1.1\r\nHost: x\r\n\r\n");
    const now = await waitLines(file(), 1);
    assert.equal(now.length, 1);
    assert.match(now[0], /"GET \/1b\?after HTTP\/1\.1"/);
    assert.match(lines(moved).at(-1)!, /"GET \/1b\?before HTTP\/1\.1"/);
    assert.equal(vw.child.exitCode, null, "SIGUSR1 did not stop vw");
    assert.doesNotMatch(vw.stderr(), /SIGUSR1/);
  });
});

describe("--access-log formats and places", () => {
  it("--log-format common: no Referer, no User-Agent", async () => {
    const file = path.join(dir, "common.log");
    const vw = await startVw(["--workers", "1", "--quiet", "--access-log", file, "--log-format", "common"]);
    try {
      await answer(vw.port, "GET /100b HTTP/1.1\r\nHost: x\r\nUser-Agent: u\r\n\r\n");
      const [l] = await waitLines(file, 1);
      const m = COMMON.exec(l);
      assert.ok(m, l);
      assert.deepEqual([m[1], m[8], m[9], m[10]], ["127.0.0.1", "GET /100b HTTP/1.1", "200", "100"]);
    } finally {
      await vw.stop();
    }
  });

  it("an IPv6 client is written as such", { skip: fs.existsSync("/proc/net/if_inet6") ? false : "no IPv6 here" }, async () => {
    const file = path.join(dir, "v6.log");
    const vw = await startVw(["--workers", "1", "--quiet", "--listen", "[::1]:0", "--access-log", file]);
    try {
      await answer(vw.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "::1");
      const [l] = await waitLines(file, 1);
      assert.match(l, /^::1 - - \[/);
    } finally {
      await vw.stop();
    }
  });

  it("lines still in the rings at a graceful stop are written before vw exits", async () => {
    const file = path.join(dir, "stop.log");
    const vw = await startVw(["--workers", "1", "--quiet", "--access-log", file]);
    const c = await RawClient.connect(vw.port);
    c.write("GET /1b HTTP/1.1\r\nHost: x\r\n\r\n".repeat(100));
    await c.responses(100, { timeoutMs: 2000 });
    c.destroy();
    await vw.stop();
    assert.equal(lines(file).length, 100);
  });

  it("--access-log -: lines on stdout, everything else on stderr", async () => {
    const vw = await startVw(["--workers", "1", "--access-log", "-", "--stats-interval", "0.2"]);
    try {
      await answer(vw.port, "GET /1b HTTP/1.1\r\nHost: x\r\n\r\n");
      const deadline = Date.now() + 3000;
      while (!/\n/.test(vw.stdout()) && Date.now() < deadline) await sleep(20);
      await sleep(300); // a live-view line or two would have come by now
      const out = vw.stdout().split("\n").filter((l) => l !== "");
      assert.equal(out.length, 1, `stdout: ${vw.stdout()}`);
      assert.match(out[0], COMBINED);
      assert.match(vw.stderr(), /listening on/);
    } finally {
      await vw.stop();
    }
  });

  it("a worker makes no system call for the log: the same count per request with it and without", { timeout: 60000, skip: ab ? false : "ab not installed" }, async () => {
    // One connection, one request at a time: each costs the worker a wait, a read and a write.
    const perRequest = async (args: string[]): Promise<number> => {
      const mport = await freePort();
      const vw = await startVw(["--workers", "1", "--quiet", "--coalesce", "off", "--metrics", `127.0.0.1:${mport}`, ...args]);
      try {
        const s0 = await metricValue(mport, "vw_syscalls_total");
        await run(ab!, ["-k", "-q", "-n", "3000", "-c", "1", `http://127.0.0.1:${vw.port}/1b`], { timeout: 40000 });
        return ((await metricValue(mport, "vw_syscalls_total")) - s0) / 3000;
      } finally {
        await vw.stop();
      }
    };
    const without = await perRequest([]);
    const withLog = await perRequest(["--access-log", path.join(dir, "cost.log")]);
    assert.ok(Math.abs(withLog - without) < 0.05, `system calls per request: ${withLog.toFixed(3)} with the log, ${without.toFixed(3)} without`);
  });
});

describe("--access-log errors", () => {
  const cases: [string[], number, RegExp][] = [
    [["--log-format", "json", "--access-log", "x.log"], 2, /--log-format json: choose common or combined/],
    [["--log-format", "common"], 2, /--log-format needs --access-log/],
    [["--access-log", "-", "--json"], 2, /--access-log - and --json both want stdout/],
    [["--access-log", "/nonexistent-vw-dir/a.log", "--port", "0"], 1, /--access-log \/nonexistent-vw-dir\/a\.log: cannot open it for appending: its directory does not exist/],
  ];
  for (const [args, code, expected] of cases) {
    it(args.join(" "), async () => {
      const r = await runVw(args);
      assert.equal(r.code, code, r.stderr);
      const err = r.stderr.trim().split("\n");
      assert.equal(err.length, 1, r.stderr);
      assert.match(err[0], expected);
    });
  }
});

describe("--access-log under --proxy", () => {
  for (const engine of ["epoll", "uring"]) {
    it(`--engine ${engine}: a line per relayed response: the client's request line, the backend's status, the body bytes relayed, vw's own 502`, { skip: engineSkip(engine) ?? false, timeout: 30000 }, async () => {
      const backend = await startVw(["--workers", "1", "--quiet"]);
      const file = path.join(dir, `proxy-${engine}.log`);
      const proxy = await startVw(["--workers", "1", "--quiet", "--engine", engine, "--proxy", `127.0.0.1:${backend.port}`, "--access-log", file]);
      try {
        await answer(proxy.port, "GET /1k?x=1 HTTP/1.1\r\nHost: a\r\nReferer: http://r/\r\nUser-Agent: ua/1\r\n\r\n");
        await answer(proxy.port, "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n");
        await answer(proxy.port, "HEAD /1b HTTP/1.1\r\nHost: a\r\n\r\n");
        await answer(proxy.port, "GET /1b HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n");
        const got = (await waitLines(file, 4)).map((l) => COMBINED.exec(l));
        assert.equal(got.length, 4, "four lines");
        for (const m of got) assert.ok(m, "combined format");
        const [ok, missing, head, bad] = got as RegExpExecArray[];
        assert.deepEqual([ok[1], ok[8], ok[9], ok[10], ok[11], ok[12]], ["127.0.0.1", "GET /1k?x=1 HTTP/1.1", "200", "1024", "http://r/", "ua/1"]);
        assert.deepEqual([missing[8], missing[9]], ["GET /nope HTTP/1.1", "404"]);
        assert.ok(Number(missing[10]) > 0, "the backend's 404 page, relayed");
        assert.deepEqual([head[8], head[9], head[10]], ["HEAD /1b HTTP/1.1", "200", "-"]); // no body: "-", as CLF writes 0
        assert.deepEqual([bad[8], bad[9]], ["GET /1b HTTP/1.1", "400"]);
      } finally {
        await proxy.stop();
        await backend.stop();
      }
    });
  }
});
