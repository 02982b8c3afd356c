#!/usr/bin/env node
// build.js: `npm install`'s build step. Builds the addon (node-gyp) and the TypeScript (tsc) only
// when their outputs are missing or older than their sources, so a second install (e.g. the
// one `npx vw` performs when it links this package) takes a second instead of a full rebuild.
"use strict";
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");

function newest(entries) {
  let t = 0;
  for (const e of entries) {
    const p = path.join(root, e);
    if (!fs.existsSync(p)) continue;
    const st = fs.statSync(p);
    if (st.isDirectory()) t = Math.max(t, newest(fs.readdirSync(p).map((f) => path.join(e, f))));
    else t = Math.max(t, st.mtimeMs);
  }
  return t;
}

function stale(output, sources) {
  const out = path.join(root, output);
  return !fs.existsSync(out) || fs.statSync(out).mtimeMs < newest(sources);
}

function run(file, args) {
  try {
    execFileSync(process.execPath, [file, ...args], { cwd: root, stdio: "inherit" });
  } catch {
    process.exit(1); // the tool has said what went wrong
  }
}

// Node's own headers, as npm passes them (npm_config_nodedir) or beside this node binary, so
// node-gyp never has to download them.
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = path.resolve(path.dirname(process.execPath), "..");
  return fs.existsSync(path.join(prefix, "include", "node", "node_api.h")) ? [`--nodedir=${prefix}`] : [];
}

const force = process.argv.includes("--force");
if (force || stale("build/Release/vw.node", ["native", "binding.gyp"])) {
  let gyp;
  try {
    gyp = require.resolve("node-gyp/bin/node-gyp.js", { paths: [root] });
  } catch {
    gyp = process.env.npm_config_node_gyp; // npm's own copy
  }
  if (!gyp) throw new Error("node-gyp not found: run npm install");
  run(gyp, ["rebuild", ...nodedirArgs()]);
}
if (force || stale("dist/src/cli.js", ["src", "test", "bench", "tsconfig.json"])) {
  run(require.resolve("typescript/bin/tsc", { paths: [root] }), ["-p", "."]);
}
// The `vw` bin must be executable wherever npm links this package from: npx keeps a link to
// a local package in its cache, and a fresh checkout at the same path would otherwise be run
// through a bin npm made executable only in the checkout it first saw.
const bin = path.join(root, "dist", "src", "cli.js");
if (fs.existsSync(bin)) fs.chmodSync(bin, 0o755);
