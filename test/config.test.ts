// Bad configuration: one clear line on stderr, exit code 2, nothing started.
import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { parseListen, resolveConfig } from "../src/config";
import { runVw } from "./helpers/server";

describe("bad flags exit 2 with one line", () => {
  const cases: [string[], RegExp][] = [
    [["--port", "abc"], /--port abc: not a number \(write it in decimal/],
    [["--port", "70000"], /--port 70000: must be a whole number from 0 to 65535/],
    [["--policy", "batch"], /--policy batch: choose fifo, rr or other/],
    [["--priority", "0"], /--priority 0: must be a whole number from 1 to 99/],
    [["--listen", "localhost"], /--listen localhost: write HOST:PORT/],
    [["--listen", "example.com:80"], /not a numeric IP address/],
    [["--listen", "::1:80"], /write HOST:PORT/],
    [["--workers", "0"], /--workers 0: must be a whole number from 1/],
    [["--cpus", "3-1"], /range 3-1 runs backwards/],
    [["--cpus", "a"], /is not a CPU list/],
    [["--header-timeout", "0"], /--header-timeout 0: must be a number of seconds above 0/],
    [["--bogus"], /Unknown option '--bogus'.*see vw --help/],
    [["--port", "1", "--listen", "127.0.0.1:2"], /--port and --listen both given/],
    [["extra"], /Unexpected argument 'extra'.*see vw --help/],
    [["--engine", "kqueue"], /--engine kqueue: choose epoll, uring, poll, select, blocking/],
    [["--sqpoll"], /--sqpoll works with --engine uring only \(not epoll\)/],
    [["--engine", "poll", "--sqpoll"], /--sqpoll works with --engine uring only \(not poll\)/],
    [["--defer-accept=-1"], /--defer-accept -1: must be a whole number from 0 to 3600/],
    [["--defer-accept", "0.5"], /--defer-accept 0.5: must be a whole number from 0 to 3600/],
    [["--defer-accept", "soon"], /--defer-accept soon: not a number/],
    [["--fastopen=-5"], /--fastopen -5: must be a whole number from 0 to 1048576/],
    [["--fastopen", "on"], /--fastopen on: not a number/],
  ];
  for (const [args, expected] of cases) {
    it(args.join(" "), async () => {
      const r = await runVw(args);
      assert.equal(r.code, 2, r.stderr);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^vw: /);
      assert.match(lines[0], expected);
      assert.equal(r.stdout, "");
    });
  }
});

describe("help and version", () => {
  it("--help lists every flag and exits 0", async () => {
    const r = await runVw(["--help"]);
    assert.equal(r.code, 0);
    for (const flag of ["--port", "--listen", "--workers", "--cpus", "--policy", "--priority", "--require-rt", "--no-keepalive", "--engine", "--sqpoll", "--defer-accept", "--fastopen"]) {
      assert.ok(r.stdout.includes(flag), flag);
    }
  });
  it("--version prints the package version", async () => {
    const r = await runVw(["--version"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
  });
});

describe("resolveConfig", () => {
  it("listens on every address, IPv4 and IPv6, on port 8085 by default", () => {
    assert.deepEqual(resolveConfig({}).listen, [{ family: 6, host: "::", port: 8085, dualStack: true }]);
  });
  it("parses listen addresses", () => {
    assert.deepEqual(parseListen("127.0.0.1:80"), { family: 4, host: "127.0.0.1", port: 80, dualStack: false });
    assert.deepEqual(parseListen("[::1]:81"), { family: 6, host: "::1", port: 81, dualStack: false });
    assert.deepEqual(parseListen("*:82"), { family: 6, host: "::", port: 82, dualStack: true });
    assert.deepEqual(parseListen("[::]:83"), { family: 6, host: "::", port: 83, dualStack: false });
  });
  it("turns seconds into milliseconds", () => {
    const c = resolveConfig({ headerTimeout: 0.5, idleTimeout: 2 });
    assert.equal(c.headerTimeoutMs, 500);
    assert.equal(c.idleTimeoutMs, 2000);
  });
});

describe("--coalesce under --proxy", () => {
  it("the default auto turns off for a relay (two hops per request); an explicit value stays", () => {
    const proxy = ["127.0.0.1:9"];
    assert.equal(resolveConfig({}).coalesce.mode, "auto");
    assert.equal(resolveConfig({ proxy }).coalesce.mode, "off");
    assert.deepEqual(resolveConfig({ proxy, coalesce: "auto" }).coalesce, { mode: "auto", boundUs: 250 });
    assert.deepEqual(resolveConfig({ proxy, coalesce: "300" }).coalesce, { mode: "fixed", boundUs: 300 });
  });
});

describe("--policy under --proxy-fresh", () => {
  it("the default fifo becomes other (a busy FIFO worker starves ksoftirqd); an explicit policy stays", () => {
    const proxy = ["127.0.0.1:9"];
    assert.equal(resolveConfig({ proxy }).policy, "fifo");
    const fresh = resolveConfig({ proxy, proxyFresh: true });
    assert.equal(fresh.policy, "other");
    assert.equal(fresh.priority, 0);
    assert.equal(resolveConfig({ proxy, proxyFresh: true, policy: "fifo" }).policy, "fifo");
    assert.equal(resolveConfig({ proxy, proxyFresh: true, policy: "rr" }).policy, "rr");
  });
});
