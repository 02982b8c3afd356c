// proxies.ts: the proxies `npm run bench:proxy` compares and how each is started: vw --proxy
// (keep-alive pool; and with --proxy-pipeline 16), vw --proxy-fresh, nginx proxy_pass with an upstream keepalive pool and
// nginx proxy_pass without one; plus the backend they all relay to (vw itself). Only command
// lines and config files here: starting, pinning and measuring are the entry's.
import * as fs from "node:fs";
import * as path from "node:path";

export interface ProxySpec {
  /** what --proxies names */
  readonly id: string;
  /** what the tables show */
  readonly label: string;
  readonly kind: "vw" | "nginx";
  /** upstream keep-alive (a pool) or a new upstream connection per request */
  readonly keepAlive: boolean;
  /** vw only: the nginx proxy it is compared with, round by round */
  readonly peer: string | null;
  /** vw only: flags beyond --proxy, --proxy-conns (and --proxy-fresh) */
  readonly vwFlags?: readonly string[];
}

export const PROXIES: readonly ProxySpec[] = [
  { id: "vw", label: "vw --proxy (pool)", kind: "vw", keepAlive: true, peer: "nginx" },
  { id: "vw-pipeline", label: "vw --proxy --proxy-pipeline 16 (pool)", kind: "vw", keepAlive: true, peer: "nginx", vwFlags: ["--proxy-pipeline", "16"] },
  { id: "nginx", label: "nginx proxy_pass, keepalive upstream", kind: "nginx", keepAlive: true, peer: null },
  { id: "vw-fresh", label: "vw --proxy-fresh", kind: "vw", keepAlive: false, peer: "nginx-fresh" },
  { id: "nginx-fresh", label: "nginx proxy_pass, no upstream keep-alive", kind: "nginx", keepAlive: false, peer: null },
];

export interface ProxyLaunch {
  /** dist/src/cli.js */
  cli: string;
  /** HOST:PORT the proxy listens on */
  listen: string;
  /** HOST:PORT of the backend */
  backend: string;
  /** the CPU the proxy's one worker runs on */
  cpu: number;
  /** upstream connections: vw --proxy-conns, nginx upstream keepalive */
  pool: number;
  /** extra flags for vw (--vw-args) */
  vwArgs: readonly string[];
  /** where nginx's config and pid file go */
  tmpDir: string;
}

/**
 * The backend: vw serving its built-in table (/1b, /1k, …) with one worker on `cpu`, under
 * normal scheduling so that it shares its CPU fairly with the load generator beside it.
 */
export function backendCommand(cli: string, listen: string, cpu: number): { cmd: string; args: string[] } {
  return { cmd: process.execPath, args: [cli, "--listen", listen, "--workers", "1", "--cpus", String(cpu), "--policy", "other", "--quiet"] };
}

/** The command line (before any taskset / ip netns prefix) that starts `spec`. */
export function proxyCommand(spec: ProxySpec, l: ProxyLaunch): { cmd: string; args: string[] } {
  if (spec.kind === "vw") {
    return {
      cmd: process.execPath,
      args: [
        l.cli, "--listen", l.listen, "--workers", "1", "--cpus", String(l.cpu),
        "--proxy", l.backend, "--proxy-conns", String(l.pool), "--quiet",
        ...(spec.keepAlive ? [] : ["--proxy-fresh"]), ...(spec.vwFlags ?? []), ...l.vwArgs,
      ],
    };
  }
  const dir = path.join(l.tmpDir, `${spec.id}-${l.listen.replace(/[^0-9A-Za-z]/g, "_")}`);
  fs.mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, "nginx.conf");
  fs.writeFileSync(conf, nginxProxyConf(spec.keepAlive, l, dir));
  return { cmd: "nginx", args: ["-p", dir, "-c", conf, "-e", path.join(dir, "error.log")] };
}

/**
 * nginx as a reverse proxy the way its documentation sets up upstream keep-alive: one process
 * (master_process off, so the spawned PID is the one relaying), no access log, the client's
 * Host forwarded as vw does. With `keepAlive`: an upstream block with `keepalive <pool>`,
 * `proxy_http_version 1.1` and an empty Connection header; without: nginx's default
 * (HTTP/1.0 and `Connection: close` to the backend, a connection per request).
 */
export function nginxProxyConf(keepAlive: boolean, l: ProxyLaunch, dir: string): string {
  const upstream = keepAlive
    ? `  upstream backend {
    server ${l.backend};
    keepalive ${l.pool};
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }
`
    : "";
  const pass = keepAlive
    ? `      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";`
    : `      proxy_pass http://${l.backend};`;
  return `worker_processes 1;
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 65s;
${upstream}  server {
    listen ${l.listen};
    location / {
${pass}
      proxy_set_header Host $http_host;
    }
  }
}
`;
}
