// control.ts: the control socket of a running vw (a unix socket, mode 0600, owned by the
// server's user): `vw stats` attaches to it and receives every interval as one JSON line.
// Served by the Node main thread; attaching never touches the workers.
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

import type { Interval } from "../stats/sampler";

export function defaultControlPath(port: number): string {
  return path.join(os.tmpdir(), `vw-${port}.sock`);
}

/** What a control client may ask besides "stats". */
export interface ControlCommands {
  reload(): { ok: boolean; message: string };
}

export class ControlServer {
  private readonly server: net.Server;
  private readonly subscribers = new Set<net.Socket>();

  private constructor(
    readonly path: string,
    server: net.Server,
    private readonly commands: ControlCommands,
  ) {
    this.server = server;
  }

  /** Listens on `file`, replacing a stale socket left by a vw that died; mode 0600. */
  static async open(file: string, commands: ControlCommands): Promise<ControlServer> {
    if (fs.existsSync(file)) {
      const alive = await new Promise<boolean>((resolve) => {
        const s = net.connect(file);
        s.once("connect", () => (s.destroy(), resolve(true)));
        s.once("error", () => resolve(false));
      });
      if (alive) throw new Error(`control socket ${file} is in use by another vw; give this one --control PATH`);
      try {
        fs.unlinkSync(file);
      } catch {
        throw new Error(`a stale control socket ${file} belongs to another user; remove it, or give --control PATH`);
      }
    }
    const cs: ControlServer = new ControlServer(file, net.createServer((sock) => cs.onClient(sock)), commands);
    const old = process.umask(0o177); // the socket is created 0600: no window where others could connect
    try {
      await new Promise<void>((resolve, reject) => {
        cs.server.once("error", reject);
        cs.server.listen(file, () => resolve());
      });
    } finally {
      process.umask(old);
    }
    cs.server.unref();
    return cs;
  }

  private onClient(sock: net.Socket): void {
    sock.setEncoding("utf8");
    let buf = "";
    sock.on("data", (d: string) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const cmd = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (cmd === "stats") this.subscribers.add(sock);
        else if (cmd === "reload") sock.end(`${JSON.stringify(this.commands.reload())}\n`);
        else sock.end(`${JSON.stringify({ ok: false, message: `unknown command "${cmd}"; try "stats" or "reload"` })}\n`);
      }
      if (buf.length > 1024) sock.destroy();
    });
    sock.on("close", () => this.subscribers.delete(sock));
    sock.on("error", () => this.subscribers.delete(sock));
  }

  /** Hands the socket to the user vw is about to become (it stays 0600). */
  chown(who: { uid: number; gid: number }): void {
    fs.chownSync(this.path, who.uid, who.gid);
  }

  get attached(): number {
    return this.subscribers.size;
  }

  /** Sends an interval to every attached client; a client that does not keep up is dropped. */
  publish(iv: Interval): void {
    const line = `${JSON.stringify(iv)}\n`;
    for (const s of this.subscribers) {
      if (s.writableLength > 1 << 20) s.destroy();
      else s.write(line);
    }
  }

  close(): void {
    for (const s of this.subscribers) s.destroy();
    this.server.close();
    try {
      fs.unlinkSync(this.path);
    } catch {
      // already gone
    }
  }
}

/** The one line for a control socket `who` (vw stats, vw reload) could not reach. */
function connectError(file: string, err: NodeJS.ErrnoException, who: string): Error {
  if (err.code === "ENOENT" || err.code === "ECONNREFUSED") {
    return new Error(`no vw is running with control socket ${file}; start one, or give --port/--socket`);
  }
  if (err.code === "EACCES" || err.code === "EPERM") {
    return new Error(`${file} belongs to another user (mode 0600); run ${who} as the user vw runs as, or with sudo`);
  }
  return new Error(`control socket ${file}: ${err.message}`);
}

/** `vw reload`: asks a running vw to reload its content; resolves with its answer. */
export function requestReload(file: string): Promise<{ ok: boolean; message: string }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(file);
    let buf = "";
    sock.setEncoding("utf8");
    sock.once("connect", () => sock.write("reload\n"));
    sock.on("data", (d: string) => (buf += d));
    sock.once("error", (err: NodeJS.ErrnoException) => reject(connectError(file, err, "vw reload")));
    sock.once("close", () => {
      try {
        resolve(JSON.parse(buf) as { ok: boolean; message: string });
      } catch {
        reject(new Error(`no answer from ${file}`));
      }
    });
  });
}

/** `vw stats`: attach to a running vw and hand each interval to `onInterval`. */
export function attach(file: string, onInterval: (iv: Interval) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(file);
    sock.setEncoding("utf8");
    let buf = "";
    sock.once("connect", () => sock.write("stats\n"));
    sock.on("data", (d: string) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        onInterval(JSON.parse(line) as Interval);
      }
    });
    sock.once("error", (err: NodeJS.ErrnoException) => reject(connectError(file, err, "vw stats")));
    sock.once("close", () => resolve());
  });
}
