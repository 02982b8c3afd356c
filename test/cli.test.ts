// The command line as an operator meets it: --help on every subcommand, one clear line and a
// non-zero exit for each mistake (numbers, --metrics, --config, the control socket), vw cpus
// --json, --require-rt silent about listening, vw stats ending when its server does.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

import { asNobody, isRoot, worldReadableCopy } from "./helpers/proc";
import { cli, freePort, runVw, sleep, startVw, vwEnv, waitFor } from "./helpers/server";

/** Exactly one line on stderr, starting "vw: ", matching `re`; nothing on stdout. */
function oneLine(r: { code: number | null; stdout: string; stderr: string }, code: number, re: RegExp): void {
  assert.equal(r.code, code, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^vw: /);
  assert.match(lines[0], re);
  assert.equal(r.stdout, "");
}

describe("mistakes get one line and exit 2", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vw-cli-"));
  const badJson = path.join(dir, "bad.json");
  fs.writeFileSync(badJson, '{"port": 80,}');
  const cases: [string[], RegExp][] = [
    [["--port", "-1"], /^vw: --port -1: must be a whole number from 0 to 65535$/],
    [["-p", "-1"], /^vw: --port -1: must be a whole number from 0 to 65535$/],
    [["--port", "0x5620"], /^vw: --port 0x5620: not a number \(write it in decimal/],
    [["--port", "1e3"], /^vw: --port 1e3: not a number/],
    [["--port", " "], /^vw: --port  : not a number/],
    [["--workers", "-2"], /^vw: --workers -2: must be a whole number from 1/],
    [["--metrics", "abc"], /^vw: --metrics abc: write HOST:PORT/],
    [["--metrics", "localhost:99999"], /^vw: --metrics localhost:99999: port 99999 is above 65535/],
    [["--config", dir], /^vw: --config .*: is a directory; give the JSON file itself/],
    [["--config", badJson], /^vw: --config .*bad\.json: not valid JSON/],
    [["stats", "--bogus"], /Unknown option '--bogus'; see vw stats --help$/],
    [["stats", "--port", "-1"], /^vw: --port -1: must be a whole number from 1 to 65535/],
    [["reload", "--port", "0x10"], /^vw: --port 0x10: not a number/],
    [["cpus", "--priority", "100"], /^vw: --priority 100: must be a whole number from 1 to 99$/],
    [["cpus", "--nope"], /see vw cpus --help$/],
  ];
  for (const [args, expected] of cases) {
    it(args.join(" ").replace(dir, "DIR"), async () => oneLine(await runVw(args), 2, expected));
  }
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
});

describe("--help on every subcommand", () => {
  for (const sub of ["stats", "reload", "cpus", "check"]) {
    it(`vw ${sub} --help (and -h): usage on stdout, exit 0`, async () => {
      for (const flag of ["--help", "-h"]) {
        const r = await runVw([sub, flag]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`^Usage: vw ${sub} `));
        assert.match(r.stdout, /--socket|--policy|nginx -t/);
        for (const line of r.stdout.split("\n")) assert.ok([...line].length <= 80, `${[...line].length} columns: ${line}`);
        assert.equal(r.stderr, "");
      }
    });
  }
  it("vw --help names each subcommand's help and ends with the live view's legend", async () => {
    const r = await runVw(["--help"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /vw COMMAND --help/);
    assert.match(r.stdout, /req\/wk\s+requests per wake-up/);
    for (const line of r.stdout.split("\n")) assert.ok([...line].length <= 80, `${[...line].length} columns: ${line}`);
  });
});

describe("vw cpus --json", () => {
  it("prints the report's facts as one JSON object", async () => {
    const r = await runVw(["cpus", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split("\n").length, 1);
    const o = JSON.parse(r.stdout) as { allowed: number[]; trials: { cpu: number; getcpu: number; policy: string }[]; rt_throttling: { runtime_us: number } };
    assert.ok(o.allowed.length >= 1);
    assert.deepEqual(o.trials.map((t) => t.cpu), o.allowed);
    for (const t of o.trials) assert.equal(t.getcpu, t.cpu);
    assert.equal(typeof o.rt_throttling.runtime_us, "number");
  });
});

describe("--metrics", () => {
  it("a bare PORT means 127.0.0.1:PORT", async () => {
    const mport = await freePort();
    const vw = await startVw(["--workers", "1", "--quiet", "--metrics", String(mport)]);
    try {
      const res = await fetch(`http://127.0.0.1:${mport}/metrics`);
      assert.equal(res.status, 200);
      await res.text();
    } finally {
      await vw.stop();
    }
  });

  it("a port in use: one line naming --metrics, exit 1, no listening line", async () => {
    const taken = net.createServer().listen(0, "127.0.0.1");
    await new Promise((r) => taken.once("listening", r));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const r = await runVw(["--listen", "127.0.0.1:0", "--workers", "1", "--quiet", "--metrics", `127.0.0.1:${port}`]);
      oneLine(r, 1, new RegExp(`^vw: --metrics 127\\.0\\.0\\.1:${port}: address already in use .*choose another port$`));
    } finally {
      taken.close();
    }
  });
});

describe("vw stats when the server goes away", () => {
  it("says the server stopped and exits 1", { timeout: 20000 }, async () => {
    const vw = await startVw(["--workers", "1", "--quiet", "--stats-interval", "0.2", "--control", path.join(os.tmpdir(), `vw-cli-${process.pid}.sock`)]);
    const stats = spawn(process.execPath, [cli, "stats", "--socket", path.join(os.tmpdir(), `vw-cli-${process.pid}.sock`), "--json"], {
      stdio: ["ignore", "pipe", "pipe"],
      env: vwEnv(),
    });
    let out = "";
    let err = "";
    stats.stdout.on("data", (d: Buffer) => (out += d.toString()));
    stats.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => stats.on("exit", (code) => r(code)));
    try {
      await waitFor(() => out.includes("\n"), "a first interval from vw stats", 5000);
      await vw.stop();
      const code = await Promise.race([exited, sleep(5000).then(() => "timeout" as const)]);
      assert.equal(code, 1, `vw stats exit: ${code}; stderr: ${err}`);
      assert.match(err, /^vw: server stopped \(control socket .* closed\)$/m);
    } finally {
      stats.kill("SIGKILL");
      await vw.stop();
    }
  });
});

describe("as another user (root only)", () => {
  const skip = isRoot() ? false : "needs root (to run as nobody)";
  let dir = "";
  before(() => {
    if (isRoot()) dir = worldReadableCopy();
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("vw reload against root's control socket: one line, exit 1", { skip }, async () => {
    const sock = path.join(os.tmpdir(), `vw-cli-root-${process.pid}.sock`);
    const vw = await startVw(["--workers", "1", "--quiet", "--user", "root", "--control", sock]);
    try {
      const r = await runVw(["reload", "--socket", sock], { wrap: asNobody, cli: path.join(dir, "dist/src/cli.js") });
      oneLine(r, 1, /belongs to another user \(mode 0600\); run vw reload as the user vw runs as, or with sudo$/);
    } finally {
      await vw.stop();
    }
  });

  it("--require-rt refused: the reason only, nothing about listening, exit 1", { skip }, async () => {
    const r = await runVw(["--listen", "127.0.0.1:0", "--workers", "1", "--require-rt"], { wrap: asNobody, cli: path.join(dir, "dist/src/cli.js") });
    assert.equal(r.code, 1);
    assert.doesNotMatch(r.stdout + r.stderr, /listening on/);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /^vw: SCHED_FIFO was not granted \(EPERM.*--require-rt makes this fatal$/m);
  });
});

describe("vw check", () => {
  it("loads flags and content, binds nothing, says OK in one line, exit 0", async () => {
    const taken = net.createServer().listen(0, "127.0.0.1");
    await new Promise((r) => taken.once("listening", r));
    const port = (taken.address() as net.AddressInfo).port;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vw-check-"));
    fs.writeFileSync(path.join(dir, "a.txt"), "a");
    try {
      // The port is in use: check does not bind, so it cannot know, and says OK.
      const r = await runVw(["check", "--listen", `127.0.0.1:${port}`, "--workers", "1", "--dir", dir, "--user", "root"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^vw: configuration OK: \\d+ routes, 1 epoll worker\\(s\\) on CPU \\d+, listening on 127\\.0\\.0\\.1:${port}`));
      assert.equal(r.stdout.trim().split("\n").length, 1);
      assert.equal(r.stderr, "");
    } finally {
      taken.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  it("a missing --dir, a CPU outside the allowed set: one line, exit 2", async () => {
    oneLine(await runVw(["check", "--dir", "/nonexistent-vw-dir"]), 2, /^vw: --dir \/nonexistent-vw-dir: no such directory$/);
    oneLine(await runVw(["check", "--cpus", "4095"]), 2, /^vw: --cpus: CPU 4095 is not allowed for this process/);
  });
});
