// netns.ts: the Fastsocket three-host topology for `npm run bench:proxy -- --netns`: three
// network namespaces (client, proxy, backend) joined by two veth pairs, 10.214.1.0/24 between
// client and proxy and 10.214.2.0/24 between proxy and backend (test/proxy-topology.test.ts
// builds the same on 10.213). Root only. Created with
// unique names (this process's PID) and removed by destroy(), which the entry calls in every
// case; nothing is routed outside them.
import { execFileSync } from "node:child_process";
import * as proc from "./proc";
import { sleep } from "./util";

export type Role = "client" | "proxy" | "backend";

export interface Topology {
  /** namespace names */
  readonly ns: Record<Role, string>;
  /** every address: the client's, the proxy's toward the client (proxyC) and toward the backend (proxyB), the backend's */
  readonly addr: { readonly client: string; readonly proxyC: string; readonly proxyB: string; readonly backend: string };
  /** the proxy's address toward the client, the backend's address */
  readonly proxyAddr: string;
  readonly backendAddr: string;
  /** what a command must be prefixed with to run in `role`'s namespace */
  prefix(role: Role): string[];
  /** Waits (bounded) until something listens on TCP `port` in `role`'s namespace. */
  waitListening(role: Role, port: number, child: proc.Child, limitMs?: number): Promise<void>;
  /** Deletes the namespaces (and with them the veths); never throws. */
  destroy(): void;
}

function ip(...args: string[]): void {
  execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"], timeout: 10_000 });
}

/** null when the topology can be built here, else why not (one line). */
export function netnsProblem(): string | null {
  if (process.getuid?.() !== 0) return "needs root (it creates network namespaces and veth pairs)";
  const probe = `vbq${process.pid % 100000}`;
  try {
    ip("netns", "add", probe);
    ip("netns", "del", probe);
  } catch (e) {
    return `ip netns unavailable: ${String((e as { stderr?: Buffer }).stderr ?? e).trim().split("\n")[0]}`;
  }
  return null;
}

/** Who builds it, so that a test and a bench never share names or addresses. */
export interface TopologyOptions {
  /** two letters that begin every namespace and device name (default "vb"; names stay ≤ 15 characters) */
  prefix?: string;
  /** the second octet of the two /24s, 10.<net>.1.0 and 10.<net>.2.0 (default 214) */
  net?: number;
}

/**
 * Builds the three namespaces. In the proxy's, `tcp_tw_reuse` is 1 (loopback gets the same
 * from the default 2): a proxy that closes each upstream connection first, as --proxy-fresh
 * does, would otherwise run out of ports to the one backend within seconds.
 */
export function createTopology(opts: TopologyOptions = {}): Topology {
  const tag = process.pid % 100000;
  const p = opts.prefix ?? "vb";
  const net = opts.net ?? 214;
  const ns: Record<Role, string> = { client: `${p}c${tag}`, proxy: `${p}p${tag}`, backend: `${p}b${tag}` };
  const dev = { client: `${p}c${tag}`, proxyC: `${p}p${tag}c`, proxyB: `${p}p${tag}b`, backend: `${p}b${tag}` };
  const addr = { client: `10.${net}.1.2`, proxyC: `10.${net}.1.1`, proxyB: `10.${net}.2.1`, backend: `10.${net}.2.2` };
  const destroy = (): void => {
    for (const n of Object.values(ns)) {
      try {
        ip("netns", "del", n);
      } catch {
        // not created
      }
    }
    for (const d of Object.values(dev)) {
      try {
        ip("link", "del", d); // an end left in this namespace by a setup that failed halfway
      } catch {
        // not there: the usual case
      }
    }
  };
  destroy();
  try {
    for (const n of Object.values(ns)) {
      ip("netns", "add", n);
      ip("-n", n, "link", "set", "lo", "up");
    }
    ip("link", "add", dev.client, "netns", ns.client, "type", "veth", "peer", "name", dev.proxyC, "netns", ns.proxy);
    ip("link", "add", dev.proxyB, "netns", ns.proxy, "type", "veth", "peer", "name", dev.backend, "netns", ns.backend);
    for (const [n, d, a] of [
      [ns.client, dev.client, addr.client],
      [ns.proxy, dev.proxyC, addr.proxyC],
      [ns.proxy, dev.proxyB, addr.proxyB],
      [ns.backend, dev.backend, addr.backend],
    ] as const) {
      ip("-n", n, "addr", "add", `${a}/24`, "dev", d);
      ip("-n", n, "link", "set", d, "up");
    }
    execFileSync("ip", ["netns", "exec", ns.proxy, "sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=1"], { stdio: "pipe", timeout: 10_000 });
  } catch (e) {
    destroy();
    throw e;
  }
  return {
    ns,
    addr,
    proxyAddr: addr.proxyC,
    backendAddr: addr.backend,
    prefix: (role) => ["ip", "netns", "exec", ns[role]],
    async waitListening(role, port, child, limitMs = 10_000) {
      const deadline = Date.now() + limitMs;
      while (Date.now() < deadline) {
        if (child.hasExited()) throw new Error(`exited before listening: ${child.output().trim().slice(-400)}`);
        const r = await proc.run("ss", ["-N", ns[role], "-Hltn", `sport = :${port}`], 5000);
        if (r.code === 0 && r.out.trim() !== "") return;
        await sleep(50);
      }
      throw new Error(`port ${port} not listening in ${ns[role]} after ${limitMs} ms: ${child.output().trim().slice(-400)}`);
    },
    destroy,
  };
}
