// privileges.ts: started as root, vw binds, pins and sets SCHED_FIFO first, then becomes the
// invoking user (SUDO_UID/SUDO_GID), --user NAME, or, started as root itself, `nobody` (as nginx
// runs its workers unprivileged by default), so a parser bug is never a root shell.
// `--user root` keeps root on purpose. The real-time policy survives the switch.
import { execFileSync } from "node:child_process";

import { ConfigError } from "../errors";

export interface Identity {
  name: string;
  uid: number;
  gid: number;
  /** Chosen because nothing was asked (root, no sudo, no --user): say so, and how to keep root. */
  byDefault?: boolean;
}

/** Whom root without sudo and without --user becomes. */
export const DEFAULT_USER = "nobody";

function lookup(user: string): Identity {
  let line: string;
  try {
    line = execFileSync("getent", ["passwd", user], { encoding: "utf8" }).trim().split("\n")[0];
  } catch {
    throw new ConfigError(`--user ${user}: no such user on this machine (getent passwd ${user})`);
  }
  const [name, , uid, gid] = line.split(":");
  return { name, uid: Number(uid), gid: Number(gid) };
}

/** Whom to become after start, or undefined to stay as we are. */
export function dropTarget(user: string | undefined, env: NodeJS.ProcessEnv = process.env): Identity | undefined {
  const root = process.getuid?.() === 0;
  if (!root) {
    if (user !== undefined && lookup(user).uid !== process.getuid?.()) {
      throw new ConfigError(`--user ${user}: only root can switch users; start vw with sudo or drop --user`);
    }
    return undefined;
  }
  if (user !== undefined) return user === "root" ? undefined : lookup(user);
  const uid = Number(env.SUDO_UID);
  const gid = Number(env.SUDO_GID);
  if (!env.SUDO_UID || !Number.isInteger(uid) || uid === 0) {
    // Root itself ran vw: drop to nobody (65534 where getent has no entry for it).
    let who: Identity;
    try {
      who = lookup(DEFAULT_USER);
    } catch {
      who = { name: DEFAULT_USER, uid: 65534, gid: 65534 };
    }
    return { ...who, byDefault: true };
  }
  const name = env.SUDO_USER ?? String(uid);
  return { name, uid, gid: Number.isInteger(gid) && env.SUDO_GID ? gid : uid };
}

/** Becomes `who` for every thread of the process (glibc applies setuid to all threads). */
export function dropTo(who: Identity): void {
  if (!process.setgroups || !process.setgid || !process.setuid) throw new Error("cannot change user on this platform");
  process.setgroups([who.gid]);
  process.setgid(who.gid);
  process.setuid(who.uid);
}
