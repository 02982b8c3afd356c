// The flag table (src/cli/flags.ts) drives the command line: every entry is in --help with the
// default the table gives, every --config key is a flag and goes through the same check, and
// the fields sent to the addon are exactly the ones native/worker/config.h reads.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { argSpec, cliName, fileSpec, flagEntries, nativeName, shownDefault, valueName } from "../src/cli/flag-table";
import { root, runVw, vwEnv } from "./helpers/server";

/** The --help block of each flag: its first line up to the next flag's, blanks squeezed. */
function helpBlocks(help: string): Map<string, string> {
  const blocks = new Map<string, string>();
  let current: string | undefined;
  for (const line of help.split("\n")) {
    const m = /^ {2}(?:-\w, | {4})--([\w-]+)/.exec(line);
    if (m) current = m[1];
    else if (!/^ {27}\S/.test(line)) current = undefined; // not a continuation line
    if (current) blocks.set(current, `${blocks.get(current) ?? ""} ${line.trim()}`.trim());
  }
  return blocks;
}

describe("the flag table", () => {
  it("vw --help shows every flag, its short form, argument, default, and fits 80 columns", async () => {
    const r = await runVw(["--help"]);
    assert.equal(r.code, 0, r.stderr);
    const blocks = helpBlocks(r.stdout);
    for (const [k, f] of flagEntries) {
      const name = cliName(k);
      const block = blocks.get(name);
      assert.ok(block, `--${name} is not in --help`);
      if (f.short) assert.ok(block.startsWith(`-${f.short}, --${name}`), block);
      if (f.arg) assert.ok(block.startsWith(`${f.short ? `-${f.short}, ` : ""}--${name} ${f.arg}`), block);
      const shown = shownDefault(f);
      if (shown !== undefined) assert.ok(block.endsWith(`(default ${shown})`), `--${name}: ${block}`);
      if (f.list) assert.match(block, /\(repeatable\)/);
    }
    assert.equal(blocks.size, flagEntries.length, [...blocks.keys()].join(" "));
    for (const line of r.stdout.split("\n")) assert.ok([...line].length <= 80, `${[...line].length} columns: ${line}`);
  });

  it("names: the flag, the value (camelCase + unit) and the native field (snake_case + unit)", () => {
    const byKey = new Map(flagEntries);
    assert.equal(valueName("idle-timeout"), "idleTimeoutMs");
    assert.equal(nativeName("idle-timeout"), "idle_timeout_ms");
    assert.equal(nativeName("defer-accept"), "defer_accept_s");
    assert.equal(cliName("keepalive"), "no-keepalive");
    assert.ok(byKey.has("port"));
    const shorts = flagEntries.flatMap(([, f]) => (f.short ? [f.short] : []));
    assert.equal(new Set(shorts).size, shorts.length, "a short flag is used twice");
    assert.deepEqual(Object.keys(argSpec()), flagEntries.map(([k]) => cliName(k)));
  });

  it("every --config key is a flag; help, version and config are not keys", () => {
    const keys = Object.keys(fileSpec());
    const flags = new Set(Object.keys(argSpec()));
    for (const k of keys) assert.ok(flags.has(k), k);
    for (const k of ["help", "version", "config"]) assert.ok(!keys.includes(k), k);
    assert.equal(keys.length, flags.size - 3);
  });

  it("a --config value goes through the flag's own check; a key that is not one is one line, exit 2", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vw-flags-"));
    const file = path.join(dir, "vw.json");
    try {
      fs.writeFileSync(file, JSON.stringify({ "idle-timeout": 0 }));
      let r = await runVw(["check", "--config", file]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^vw: --idle-timeout 0: must be a number of seconds above 0/);
      fs.writeFileSync(file, JSON.stringify({ help: true }));
      r = await runVw(["check", "--config", file]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^vw: --config .*: unknown key "help"; did you mean/);
      assert.equal(r.stderr.trim().split("\n").length, 1);
      fs.writeFileSync(file, JSON.stringify({ "no-keepalive": true, workers: 1, "stats-interval": 0.5 }));
      r = await runVw(["check", "--config", file]);
      assert.equal(r.code, 0, r.stderr);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("vw cpus shares the table's checks and defaults", async () => {
    const r = await runVw(["cpus", "--policy", "batch"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^vw: --policy batch: choose fifo, rr or other$/m);
    const h = await runVw(["cpus", "--help"]);
    assert.match(h.stdout, /--policy P +the policy to try: fifo \| rr \| other \(default fifo\)/);
    assert.match(h.stdout, /--priority N +the real-time priority to try, 1-99 \(default 50\)/);
  });

  it("the addon reads exactly the fields the launcher sends (native/worker/config.h against the table)", () => {
    // In a child, like vw itself: the addon never loads into the test runner (npm run test:asan).
    const js = (f: string): string => JSON.stringify(path.join(root, "dist", "src", f));
    const script = [
      `const { resolveConfig, toNative } = require(${js("config.js")});`,
      `const { native } = require(${js("native.js")});`,
      `const sent = Object.keys(toNative(resolveConfig({}), [0], null));`,
      `process.stdout.write(JSON.stringify({ sent, read: native().configFields() }));`,
    ].join("\n");
    const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", env: vwEnv(), timeout: 10000 });
    assert.equal(r.status, 0, r.stderr);
    const { sent, read } = JSON.parse(r.stdout) as { sent: string[]; read: string[] };
    // access_log is read apart (an fd the launcher opened); every other key is an X(...) field.
    assert.deepEqual(sent.filter((k) => k !== "access_log").sort(), [...read].sort());
    for (const [k, f] of flagEntries) if (f.native) assert.ok(read.includes(nativeName(k)), `native/worker/config.h lacks ${nativeName(k)} (--${k})`);
  });
});
