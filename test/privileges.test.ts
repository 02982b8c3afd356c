// Privileges and access control: root drops to the invoking user after binding and real-time
// setup, keeping SCHED_FIFO; --allow closes connections from elsewhere unread.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { RawClient, freePort, metricValue, runVw, startVw } from "./helpers/server";
import { isRoot, taskPolicy, taskStatus, worldReadableCopy } from "./helpers/proc";

const SCHED_FIFO = 1;
const GET = "GET /1b HTTP/1.1\r\nHost: x\r\n\r\n";

describe("dropping root", { skip: isRoot() ? false : "needs root" }, () => {
  it("becomes SUDO_UID/SUDO_GID after start; workers keep SCHED_FIFO and the control socket follows", async () => {
    const dir = worldReadableCopy(); // the dropped user must be able to read what it runs
    const env = { ...process.env, SUDO_UID: "65534", SUDO_GID: "65534", SUDO_USER: "nobody" };
    const vw = await startVw(["--workers", "1"], { cli: path.join(dir, "dist/src/cli.js"), env });
    try {
      assert.match(vw.stdout(), /running as nobody \(uid 65534, gid 65534\)/);
      const st = taskStatus(vw.pid, vw.tids[0]);
      assert.match(st.get("Uid") ?? "", /^65534\s+65534\s+65534\s+65534$/);
      assert.match(st.get("Gid") ?? "", /^65534\s+65534\s+65534\s+65534$/);
      assert.equal(taskPolicy(vw.pid, vw.tids[0]).policy, SCHED_FIFO);
      assert.match(taskStatus(vw.pid, vw.pid).get("Uid") ?? "", /^65534\s/);
      const sock = fs.statSync(path.join(os.tmpdir(), `vw-${vw.port}.sock`));
      assert.equal(sock.uid, 65534);
      assert.equal(sock.mode & 0o777, 0o600);
      const c = await RawClient.connect(vw.port);
      assert.equal((await c.request(GET)).status, 200);
      c.destroy();
    } finally {
      assert.deepEqual(await vw.stop(), { code: 0, signal: null });
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("root without sudo and without --user becomes nobody, says so, keeps SCHED_FIFO", async () => {
    const dir = worldReadableCopy();
    const env = { ...process.env };
    delete env.SUDO_UID;
    delete env.SUDO_GID;
    delete env.SUDO_USER;
    const vw = await startVw(["--workers", "1"], { cli: path.join(dir, "dist/src/cli.js"), env, defaultUser: true });
    try {
      assert.match(vw.stdout(), /^running as nobody \(uid 65534, gid 65534\) after binding and real-time setup \(started as root without sudo; --user root keeps root/m);
      assert.match(taskStatus(vw.pid, vw.tids[0]).get("Uid") ?? "", /^65534\s+65534\s+65534\s+65534$/);
      assert.match(taskStatus(vw.pid, vw.pid).get("Uid") ?? "", /^65534\s/);
      assert.equal(taskPolicy(vw.pid, vw.tids[0]).policy, SCHED_FIFO);
      const c = await RawClient.connect(vw.port);
      assert.equal((await c.request(GET)).status, 200);
      c.destroy();
    } finally {
      assert.deepEqual(await vw.stop(), { code: 0, signal: null });
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("--user root keeps root", async () => {
    const env = { ...process.env, SUDO_UID: "65534", SUDO_GID: "65534" };
    const vw = await startVw(["--workers", "1", "--user", "root", "--quiet"], { env });
    try {
      assert.match(taskStatus(vw.pid, vw.tids[0]).get("Uid") ?? "", /^0\s/);
      assert.doesNotMatch(vw.stdout(), /running as/);
    } finally {
      await vw.stop();
    }
  });

  it("an unknown --user is a configuration error", async () => {
    const r = await runVw(["--port", "0", "--user", "no-such-user-vw"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^vw: --user no-such-user-vw: no such user/);
  });
});

describe("--allow", () => {
  it("serves peers inside the networks and closes others unread", async () => {
    const inside = await startVw(["--workers", "1", "--allow", "127.0.0.0/8", "--allow", "::1", "--quiet"]);
    const mport = await freePort();
    const outside = await startVw(["--workers", "1", "--allow", "10.0.0.0/8", "--quiet", "--metrics", `127.0.0.1:${mport}`]);
    try {
      const c = await RawClient.connect(inside.port);
      assert.equal((await c.request(GET)).status, 200);
      c.destroy();
      const d = await RawClient.connect(outside.port);
      d.write(GET);
      await d.waitClosed(2000);
      assert.equal(d.received.length, 0, "nothing is answered to a refused peer");
      assert.equal(await metricValue(mport, "vw_connections_rejected_total", { worker: "0", reason: "allow" }), 1);
      assert.equal(await metricValue(mport, "vw_connections_accepted_total"), 0);
    } finally {
      await inside.stop();
      await outside.stop();
    }
  });

  it("refuses a malformed network with one line", async () => {
    const r = await runVw(["--port", "0", "--allow", "10.0.0.0/33"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--allow 10\.0\.0\.0\/33: the prefix must be a whole number from 0 to 32/);
  });
});
