// npx: `npx vw` run as a user runs it (npm exec from the checkout), stopped as a user stops it:
// `kill` of the npx process, Ctrl-C (SIGINT to the terminal's foreground process group), and
// npm's default shell in between (the orphan case the parent watch covers).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import * as net from "node:net";

import { RawClient, root, sleep, which } from "./helpers/server";

interface Npx {
  child: ChildProcess;
  port: number;
  output: () => string;
  /** npm's own exit. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Every holder of npm's stdout and stderr (npm, its shell, vw) has exited. */
  closed: Promise<void>;
}

/** The environment of a user's shell: nothing npm set for this test run leaks into npx. */
function userEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

/** `npx vw ...` from the checkout, in its own process group (as a shell's foreground job). */
async function startNpx(extraEnv: NodeJS.ProcessEnv = {}): Promise<Npx> {
  const child = spawn("npx", ["vw", "--listen", "127.0.0.1:0", "--workers", "1", "-q"], {
    cwd: root,
    detached: true, // own process group: kill(-pid) is what the terminal does on Ctrl-C
    stdio: ["ignore", "pipe", "pipe"],
    env: userEnv(extraEnv),
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  const closed = new Promise<void>((resolve) => child.on("close", () => resolve()));
  // The first npx from a fresh checkout links the package into npm's npx cache: allow for it.
  const deadline = Date.now() + 60000;
  while (!/listening on 127\.0\.0\.1:(\d+)/.test(out)) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`npx vw exited before listening: ${out}`);
    if (Date.now() > deadline) {
      process.kill(-child.pid!, "SIGKILL");
      throw new Error(`npx vw did not listen within 60 s: ${out}`);
    }
    await sleep(20);
  }
  return { child, port: Number(/listening on 127\.0\.0\.1:(\d+)/.exec(out)![1]), output: () => out, exited, closed };
}

/** Resolves with what happened within ms: the promise's value, or "timeout". */
async function within<T>(p: Promise<T>, ms: number): Promise<T | "timeout"> {
  let t: NodeJS.Timeout | undefined;
  const r = await Promise.race([p, new Promise<"timeout">((res) => (t = setTimeout(() => res("timeout"), ms)))]);
  clearTimeout(t);
  return r;
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: "127.0.0.1" });
    s.once("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.once("error", () => resolve(true));
  });
}

/** One request answered: the server really is serving through npx. */
async function serves(port: number): Promise<void> {
  const c = await RawClient.connect(port);
  c.write("GET /1b HTTP/1.1\r\nHost: x\r\n\r\n");
  await c.responses(1, { timeoutMs: 3000 });
  c.destroy();
}

/** Ends whatever is left of the group if a test failed halfway (npm's group only). */
function cleanup(n: Npx): void {
  try {
    process.kill(-n.child.pid!, "SIGKILL");
  } catch {
    // already gone
  }
}

describe("npx vw", { skip: which("npx") ? false : "npx not on the PATH" }, () => {
  it("kill of the npx process stops vw gracefully: npm exits 0, the port is free", async () => {
    const n = await startNpx();
    try {
      await serves(n.port);
      n.child.kill("SIGTERM");
      assert.deepEqual(await within(n.exited, 8000), { code: 0, signal: null }, n.output());
      assert.notEqual(await within(n.closed, 3000), "timeout", `vw still holds npm's stdout: ${n.output()}`);
      assert.match(n.output(), /^vw: \d+ requests in /m, "the graceful stop's summary");
      assert.ok(await refused(n.port), "the port is free again");
    } finally {
      cleanup(n);
    }
  });

  it("Ctrl-C (SIGINT to the process group) stops vw gracefully, once: npm exits 0", async () => {
    const n = await startNpx();
    try {
      await serves(n.port);
      process.kill(-n.child.pid!, "SIGINT");
      assert.deepEqual(await within(n.exited, 8000), { code: 0, signal: null }, n.output());
      assert.notEqual(await within(n.closed, 3000), "timeout", n.output());
      assert.equal(n.output().match(/^vw: \d+ requests in /gm)?.length, 1, `one summary: ${n.output()}`);
      assert.ok(await refused(n.port), "the port is free again");
    } finally {
      cleanup(n);
    }
  });

  it("with npm's default shell between npm and vw, kill still stops vw (the parent watch)", async () => {
    // npm_config_script_shell beats the checkout's .npmrc: dash forks vw and stays in between.
    const n = await startNpx({ npm_config_script_shell: "sh" });
    try {
      await serves(n.port);
      n.child.kill("SIGTERM");
      assert.notEqual(await within(n.exited, 8000), "timeout", "npm exits");
      assert.notEqual(await within(n.closed, 5000), "timeout", `vw outlived npm: ${n.output()}`);
      assert.match(n.output(), /the process that started vw \(pid \d+, under npm\) has exited; stopping/);
      assert.match(n.output(), /^vw: \d+ requests in /m, "the graceful stop's summary");
      assert.ok(await refused(n.port), "the port is free again");
    } finally {
      cleanup(n);
    }
  });
});
