// Start and reload failures cross the seam as fields (step, worker, target, port, errno) and the
// launcher words them: the addon's own failures, the one line vw prints, and errno names.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

import { errnoName } from "../src/errors";
import type { NativeFailure } from "../src/native";
import { describeFailure } from "../src/start-failure";
import { root, runVw, vwEnv } from "./helpers/server";

/** Runs `body` in a child with vw's environment (the addon never loads into the test runner). */
function inChild(body: string): unknown {
  const dist = JSON.stringify(path.join(root, "dist", "src"));
  const script = `const path = require("node:path"); const src = (f) => require(path.join(${dist}, f));\n${body}`;
  const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", env: vwEnv(), timeout: 15000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

async function taken(): Promise<{ port: number; close: () => void }> {
  const s = net.createServer().listen(0, "127.0.0.1");
  await new Promise((r) => s.once("listening", r));
  return { port: (s.address() as net.AddressInfo).port, close: () => s.close() };
}

const base: NativeFailure = { ok: false, errno: 0, message: "", step: "bind", worker: null, target: "", port: null, detail: "" };

describe("errno names", () => {
  it("come from Node's table, not from numbers written here", () => {
    assert.equal(errnoName(os.constants.errno.EPERM), "EPERM");
    assert.equal(errnoName(os.constants.errno.EADDRINUSE), "EADDRINUSE");
    assert.equal(errnoName(os.constants.errno.EAGAIN), "EAGAIN");
    assert.equal(errnoName(99999), "errno 99999");
  });
});

describe("describeFailure words the fields", () => {
  it("a listener's address and port, whatever the worker", () => {
    const f = { ...base, errno: os.constants.errno.EADDRINUSE, step: "bind" as const, worker: 3, target: "[::]:8085", port: 8085 };
    assert.deepEqual(describeFailure(f), {
      code: "EADDRINUSE",
      text: "bind [::]:8085: address already in use; is another server on port 8085? Stop it or choose another --port",
    });
  });
  it("a socket option, a CPU, the table, io_uring", () => {
    const einval = { ...base, errno: os.constants.errno.EINVAL, message: "Invalid argument" };
    assert.equal(
      describeFailure({ ...einval, step: "setsockopt", target: "127.0.0.1:80", port: 80, detail: "TCP_FASTOPEN" }).text,
      "setsockopt TCP_FASTOPEN 127.0.0.1:80: invalid (Invalid argument); check --cpus and --listen",
    );
    assert.equal(describeFailure({ ...einval, step: "pin", worker: 0, target: "7" }).text, "pin to cpu 7: invalid (Invalid argument); check --cpus and --listen");
    assert.equal(describeFailure({ ...einval, step: "table", detail: "missing error page 404" }).text, "response table: missing error page 404");
    const uring = { ...base, errno: os.constants.errno.EPERM, message: "Operation not permitted", step: "uring_setup" as const, target: "uring", detail: "io_uring_queue_init" };
    assert.deepEqual(describeFailure(uring), {
      code: "EPERM",
      text: "io_uring_queue_init: Operation not permitted (EPERM); the kernel refused io_uring here: choose another --engine (epoll is the default)",
    });
  });
});

describe("the addon's failures are fields", () => {
  it("a port in use: step bind, no worker yet, the address and the port apart", async () => {
    const t = await taken();
    try {
      const f = inChild(`
        const { resolveConfig, toNative } = src("config.js");
        const { native } = src("native.js");
        const { buildTable } = src("content/content.js");
        const c = resolveConfig({ listen: ["127.0.0.1:${t.port}"], workers: 1, policy: "other" });
        process.stdout.write(JSON.stringify(native().start(toNative(c, [0], null), buildTable(c.content))));
      `) as NativeFailure;
      assert.equal(f.ok, false);
      assert.equal(errnoName(f.errno), "EADDRINUSE");
      assert.equal(f.step, "bind");
      assert.equal(f.worker, null);
      assert.equal(f.target, `127.0.0.1:${t.port}`);
      assert.equal(f.port, t.port);
    } finally {
      t.close();
    }
  });

  it("a CPU a worker cannot pin to: step pin, the worker's id, the CPU", () => {
    const f = inChild(`
      const { resolveConfig, toNative } = src("config.js");
      const { native } = src("native.js");
      const { buildTable } = src("content/content.js");
      const c = resolveConfig({ listen: ["127.0.0.1:0"], policy: "other" });
      const cpus = native().allowedCpus();
      process.stdout.write(JSON.stringify(native().start(toNative(c, [cpus[0], 4095], null), buildTable(c.content))));
    `) as NativeFailure;
    assert.equal(f.ok, false);
    assert.equal(f.step, "pin");
    assert.equal(f.worker, 1);
    assert.equal(f.target, "4095");
    assert.equal(f.port, null);
  });

  it("a table without its error pages on reload: step table, StartError with the errno's name", () => {
    const r = inChild(`
      const vw = src("index.js");
      const s = vw.start(vw.resolveConfig({ listen: ["127.0.0.1:0"], workers: 1, policy: "other" }));
      let out;
      try { s.reload({ routes: [], errors: [] }); out = { ok: true }; } catch (e) { out = { name: e.name, code: e.code, message: e.message }; }
      s.stopNow();
      process.stdout.write(JSON.stringify(out));
    `) as { name: string; code: string; message: string };
    assert.equal(r.name, "StartError");
    assert.equal(r.code, "EINVAL");
    assert.match(r.message, /^response table: missing error page/);
  });

  it("vw prints one line from the fields and exits 1", async () => {
    const t = await taken();
    try {
      const r = await runVw(["--listen", `127.0.0.1:${t.port}`, "--workers", "1", "--quiet"]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.equal(r.stderr.trim(), `vw: bind 127.0.0.1:${t.port}: address already in use; is another server on port ${t.port}? Stop it or choose another --port`);
    } finally {
      t.close();
    }
  });
});
