// cidr.ts: --allow CIDR → the 128-bit form the workers compare against (IPv4 as ::ffff:a.b.c.d,
// so an IPv4 peer on a dual-stack socket matches an IPv4 rule).
import * as net from "node:net";

import { ConfigError } from "./errors";

export interface NativeCidr {
  bytes: Buffer; // 16
  prefix: number; // 0..128
}

function ipv6Bytes(text: string): Buffer {
  const out = Buffer.alloc(16);
  let s = text;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const parts = v4[1].split(".").map(Number);
    s = `${s.slice(0, -v4[1].length)}${((parts[0] << 8) | parts[1]).toString(16)}:${((parts[2] << 8) | parts[3]).toString(16)}`;
  }
  const [head, tail] = s.includes("::") ? s.split("::") : [s, undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

export function parseCidr(text: string): NativeCidr {
  const [addr, bits, extra] = text.split("/");
  const family = net.isIP(addr);
  if (family === 0 || extra !== undefined) {
    throw new ConfigError(`--allow ${text}: write an address or a network, e.g. 10.0.0.0/8, 127.0.0.1, ::1, fd00::/8`);
  }
  const max = family === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : Number(bits);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || bits === "") {
    throw new ConfigError(`--allow ${text}: the prefix must be a whole number from 0 to ${max}`);
  }
  if (family === 6) return { bytes: ipv6Bytes(addr), prefix };
  const bytes = Buffer.alloc(16);
  bytes[10] = bytes[11] = 0xff;
  addr.split(".").forEach((p, i) => (bytes[12 + i] = Number(p)));
  return { bytes, prefix: prefix + 96 };
}
