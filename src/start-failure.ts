// start-failure.ts: a failure the addon returns (NativeFailure: errno, step, worker, target,
// port, detail) → the one line the launcher prints and its errno name. Built from the fields,
// never by reading the addon's words.
import { errnoName } from "./errors";
import type { NativeFailure } from "./native";

/** What failed, in the words vw has always used: "bind [::]:80", "pin to cpu 3". */
function where(f: NativeFailure): string {
  switch (f.step) {
    case "setsockopt":
      return `setsockopt ${f.detail} ${f.target}`;
    case "address":
      return `parse address ${f.target}`;
    case "pin":
      return `pin to cpu ${f.target}`;
    case "thread":
      return `start worker thread ${f.worker ?? 0}`;
    case "engine":
      return `engine ${f.target} is not in this build`;
    case "engine_setup":
    case "uring_setup":
      return f.detail; // the engine's own step: "epoll_create1", "io_uring_queue_init"
    case "table":
      return `response table: ${f.detail}`;
    case "affinity":
      return "sched_getaffinity";
    case "socket":
    case "bind":
    case "listen":
    case "getsockname":
      return `${f.step} ${f.target}`;
  }
}

/**
 * A start or reload failure → `code` (the errno's name, "EADDRINUSE"; "EUNKNOWN" without one)
 * and `text`, one line that says what failed and, for the usual causes, what to do.
 */
export function describeFailure(f: NativeFailure): { code: string; text: string } {
  const code = f.errno ? errnoName(f.errno) : "EUNKNOWN";
  const w = where(f);
  if (f.step === "uring_setup") {
    // ENOSYS, EPERM (kernel.io_uring_disabled, a seccomp filter) or a kernel too old for a feature.
    return { code, text: `${w}: ${f.message} (${code}); the kernel refused io_uring here: choose another --engine (epoll is the default)` };
  }
  if (f.step === "table") return { code, text: w };
  switch (code) {
    case "EADDRINUSE":
      return { code, text: `${w}: address already in use; is another server on port ${f.port}? Stop it or choose another --port` };
    case "EACCES":
      return { code, text: `${w}: permission denied; ports below 1024 need root (run with sudo) or choose --port 1024 or above` };
    case "EADDRNOTAVAIL":
      return { code, text: `${w}: that address is not on this machine; check --listen` };
    case "EAFNOSUPPORT":
      return { code, text: `${w}: IPv6 is not available here; use --listen 0.0.0.0:${f.port ?? "PORT"}` };
    case "EINVAL":
      return { code, text: `${w}: invalid (${f.message}); check --cpus and --listen` };
  }
  return { code, text: `${w}: ${f.message} (${code})` };
}
