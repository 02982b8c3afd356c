// content.ts: builds the response table: the built-in routes, the user's routes (--route) and
// directories (--dir) held in memory, their validators (ETag, Last-Modified) and precomputed
// 304s, extra headers (--header), and the error pages. Runs on the JS thread, off the hot path.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import mime from "mime-types";

import { ConfigError } from "../errors";
import type { NativeTable, ResponseSpec } from "../native";

const TEXT_TYPE = "text/plain; charset=utf-8";

/** Built-in bodies of exactly these many bytes (k = 1024), for the classic experiments. */
export const sizedRoutes: ReadonlyArray<[string, number]> = [
  ["/1b", 1],
  ["/100b", 100],
  ["/1k", 1024],
  ["/10k", 10 * 1024],
  ["/100k", 100 * 1024],
  ["/1m", 1024 * 1024],
];

const INDEX = [
  "vw: a CPU-pinned, real-time HTTP/1.1 server.",
  "Bodies of exact sizes: /1b /100b /1k /10k /100k /1m (k = 1024 bytes).",
  "",
].join("\n");

export interface ContentOptions {
  routes: string[]; // "PATH=TEXT" or "PATH=@FILE"
  dirs: string[];
  headers: string[]; // "Name: value": on 2xx and 304 responses (--header)
  headersAlways: string[]; // "Name: value": on every response, errors included (--header-always)
  maxFileSize: number; // bytes
  maxTotal: number; // bytes, all bodies together
  maxHeader: number; // bytes: --max-header, which bounds the longest path a request can name
}

export const defaultContent: ContentOptions = {
  routes: [],
  dirs: [],
  headers: [],
  headersAlways: [],
  maxFileSize: 64 * 1024 * 1024,
  maxTotal: 1024 * 1024 * 1024,
  maxHeader: 8 * 1024,
};

/** The table, and one line for each file under a --dir that no request can name. */
export interface Content {
  table: NativeTable;
  unservable: string[];
}

function filler(size: number): Buffer {
  // Printable and line-broken, so a body shown in a terminal stays readable.
  const line = Buffer.from("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUV\n");
  const body = Buffer.alloc(size);
  for (let i = 0; i < size; i += line.length) line.copy(body, i, 0, Math.min(line.length, size - i));
  return body;
}

/** "Name: value" → a header line; refuses what would break the response framing. */
export function headerLine(text: string, flag = "--header"): string {
  const m = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*$/.exec(text);
  if (!m || /[\x00-\x08\x0a-\x1f\x7f]/.test(m[2])) {
    throw new ConfigError(`${flag} ${JSON.stringify(text)}: write it as 'Name: value' (a token, a colon, no line breaks)`);
  }
  const reserved = ["content-length", "transfer-encoding", "connection", "date", "server", "content-type", "etag", "last-modified", "content-range", "accept-ranges"];
  if (reserved.includes(m[1].toLowerCase())) {
    throw new ConfigError(`${flag} ${m[1]}: vw sets that header itself; choose another`);
  }
  return `${m[1]}: ${m[2]}\r\n`;
}

function httpDate(seconds: number): string {
  return new Date(seconds * 1000).toUTCString();
}

function contentType(file: string): string {
  return mime.contentType(path.extname(file)) || "application/octet-stream";
}

interface Entry {
  path: Buffer; // the request path after percent-decoding: the bytes the table is keyed by
  body: Buffer;
  type: string;
  mtime: number; // seconds
  source: string; // for error messages
}

/** Strong validator from the bytes themselves: the same content has the same ETag anywhere. */
function etagOf(body: Buffer): string {
  return `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;
}

function withValidators(e: Entry, extra: string): ResponseSpec {
  const etag = etagOf(e.body);
  const validators = `ETag: ${etag}\r\nLast-Modified: ${httpDate(e.mtime)}\r\n`;
  return {
    path: e.path,
    status: 200,
    // Accept-Ranges: byte ranges of this body are answered 206 (RFC 9110 §14.3).
    headers: `Content-Type: ${e.type}\r\n${validators}Accept-Ranges: bytes\r\n${extra}`,
    body: e.body,
    etag,
    lastModified: e.mtime,
    notModifiedHeaders: `${validators}${extra}`,
  };
}

function readLimited(file: fs.PathLike, opts: ContentOptions, budget: { left: number }, label = String(file)): { body: Buffer; mtime: number } {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    throw new ConfigError(`${label}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`);
  }
  if (!st.isFile()) throw new ConfigError(`${label}: not a regular file`);
  if (st.size > opts.maxFileSize) {
    throw new ConfigError(`${label}: ${st.size} bytes is over --max-file-size ${opts.maxFileSize}; raise it or leave the file out`);
  }
  if (st.size > budget.left) {
    throw new ConfigError(`${label}: the content passes --max-total ${opts.maxTotal} bytes here; raise it or serve less`);
  }
  budget.left -= st.size;
  return { body: fs.readFileSync(file), mtime: Math.floor(st.mtimeMs / 1000) };
}

function checkRoutePath(p: string, source: string): void {
  if (!p.startsWith("/") || /[\s?#%]/.test(p) || p.split("/").some((s) => s === "." || s === "..")) {
    throw new ConfigError(`${source}: the path must start with / and hold no spaces, ?, #, % or dot segments`);
  }
}

// Last-Modified never lies after Date (RFC 9110 §8.8.2.1): an mtime in the future (a clock
// skew, touch -d) becomes the time the table is built, `now`, which every Date sent from it
// follows. Otherwise a client echoing that future date would get 304 after the file changes.
function routeEntries(opts: ContentOptions, budget: { left: number }, now: number): Entry[] {
  return opts.routes.map((spec) => {
    const eq = spec.indexOf("=");
    const source = `--route ${spec}`;
    if (eq <= 0) throw new ConfigError(`${source}: write PATH=TEXT or PATH=@FILE`);
    const p = spec.slice(0, eq);
    checkRoutePath(p, source);
    const value = spec.slice(eq + 1);
    if (value.startsWith("@")) {
      const file = path.resolve(value.slice(1));
      const { body, mtime } = readLimited(file, opts, budget);
      return { path: Buffer.from(p), body, type: contentType(file), mtime: Math.min(mtime, now), source: file };
    }
    const body = Buffer.from(value);
    if (body.length > budget.left) throw new ConfigError(`${source}: passes --max-total ${opts.maxTotal} bytes`);
    budget.left -= body.length;
    const type = path.extname(p) ? contentType(p) : TEXT_TYPE;
    return { path: Buffer.from(p), body, type, mtime: now, source };
  });
}

const SLASH = Buffer.from("/");

/** Bytes a request-target cannot carry as they are (RFC 9112 §3.2): these are percent-encoded. */
function mustEncode(byte: number): boolean {
  return byte <= 0x20 || byte === 0x7f || byte === 0x25 /* % */ || byte === 0x3f /* ? */ || byte === 0x23 /* # */;
}

/** The shortest request line that names `url` (bytes vw takes raw stay raw), in bytes. */
function shortestRequest(url: Buffer): number {
  let target = 0;
  for (const b of url) target += mustEncode(b) ? 3 : 1;
  return "GET ".length + target + " HTTP/1.0\r\n\r\n".length;
}

/**
 * Every regular file below dir as an entry; index.html also answers for its directory. Names
 * are taken as the bytes the file system holds (spaces, '%', '?', '#', UTF-8 or not), so each
 * file is keyed by exactly what the native decoder makes of its percent-encoded path. A file no
 * request can name (its path is too long for --max-header) goes to `unservable` instead.
 */
function dirEntries(dir: string, opts: ContentOptions, budget: { left: number }, now: number, unservable: string[]): Entry[] {
  let root: Buffer;
  try {
    root = fs.realpathSync(dir, { encoding: "buffer" });
  } catch {
    throw new ConfigError(`--dir ${dir}: no such directory`);
  }
  if (!fs.statSync(root).isDirectory()) throw new ConfigError(`--dir ${dir}: not a directory`);
  const inside = Buffer.concat([root, SLASH]);
  const out: Entry[] = [];
  const walk = (abs: Buffer, urlPath: Buffer): void => {
    for (const name of fs.readdirSync(abs, { encoding: "buffer" }).sort(Buffer.compare)) {
      const file = Buffer.concat([abs, SLASH, name]);
      const shown = file.toString();
      const url = Buffer.concat([urlPath, SLASH, name]);
      let real = file;
      const link = fs.lstatSync(file);
      if (link.isSymbolicLink()) {
        try {
          real = fs.realpathSync(file, { encoding: "buffer" });
        } catch {
          throw new ConfigError(`${shown}: a broken symbolic link; remove it or point it inside ${root.toString()}`);
        }
        if (!real.equals(root) && !real.subarray(0, inside.length).equals(inside)) {
          throw new ConfigError(`${shown}: a symbolic link leaving ${root.toString()} (to ${real.toString()}); vw serves only what is inside --dir`);
        }
      }
      const st = fs.statSync(real);
      if (st.isDirectory()) {
        if (!link.isSymbolicLink()) walk(file, url); // a link to a directory inside would repeat it
        continue;
      }
      if (!st.isFile()) continue;
      const need = shortestRequest(url);
      if (need > opts.maxHeader) {
        unservable.push(`${shown}: cannot be served: the shortest request for it is ${need} bytes, over --max-header ${opts.maxHeader}; raise it or shorten the path`);
        continue;
      }
      const { body, mtime } = readLimited(real, opts, budget, shown);
      const entry = { path: url, body, type: contentType(name.toString()), mtime: Math.min(mtime, now), source: shown };
      out.push(entry);
      if (name.equals(INDEX_HTML)) {
        out.push({ ...entry, path: Buffer.concat([urlPath, SLASH]) });
        if (urlPath.length > 0) out.push({ ...entry, path: urlPath });
      }
    }
  };
  walk(root, Buffer.alloc(0));
  return out;
}

const INDEX_HTML = Buffer.from("index.html");

function errorPage(status: number, text: string, extra: string): ResponseSpec {
  return { path: "", status, headers: `Content-Type: ${TEXT_TYPE}\r\n${extra}`, body: Buffer.from(`${status} ${text}\n`) };
}

/**
 * The whole table, and the files under a --dir no request can name (one line each, for the
 * caller to print at start and at each reload). `now` (seconds) is the build time: no
 * Last-Modified is later. Throws ConfigError naming the file or flag that breaks a limit.
 */
export function buildContent(opts: ContentOptions = defaultContent, now = Math.floor(Date.now() / 1000)): Content {
  // --header goes on 2xx and 304 only: a cacheable header on an error would let a shared cache
  // serve one client's bad request to everyone. --header-always goes on every response.
  const always = opts.headersAlways.map((h) => headerLine(h, "--header-always")).join("");
  const extra = opts.headers.map((h) => headerLine(h)).join("") + always;
  const text = `Content-Type: ${TEXT_TYPE}\r\n${extra}`;
  // Keyed by the path's bytes (latin1 maps each byte to one code unit): a file name need not be UTF-8.
  const byPath = new Map<string, ResponseSpec>();
  // Built-ins carry no validators (a benchmark's head stays minimal); their 304, for
  // If-None-Match: *, carries the same extra headers as their 200.
  byPath.set("/", { path: "/", status: 200, headers: text, body: Buffer.from(INDEX), notModifiedHeaders: extra });
  for (const [p, size] of sizedRoutes) {
    byPath.set(p, { path: p, status: 200, headers: text, body: size === 1 ? Buffer.from("x") : filler(size), notModifiedHeaders: extra });
  }
  const budget = { left: opts.maxTotal };
  const unservable: string[] = [];
  const add = (e: Entry): void => void byPath.set(e.path.toString("latin1"), withValidators(e, extra));
  // Later sources win: directories over built-ins, explicit routes over directories.
  for (const dir of opts.dirs) for (const e of dirEntries(dir, opts, budget, now, unservable)) add(e);
  for (const e of routeEntries(opts, budget, now)) add(e);
  const errors = [
    errorPage(400, "Bad Request", always),
    errorPage(404, "Not Found", always),
    errorPage(405, "Method Not Allowed", `Allow: GET, HEAD\r\n${always}`),
    errorPage(412, "Precondition Failed", always),
    errorPage(413, "Content Too Large", always),
    errorPage(414, "URI Too Long", always),
    errorPage(416, "Range Not Satisfiable", always),
    errorPage(431, "Request Header Fields Too Large", always),
    errorPage(501, "Not Implemented", always),
    errorPage(505, "HTTP Version Not Supported", always),
  ];
  return { table: { routes: [...byPath.values()], errors }, unservable };
}

/** The table alone (see buildContent). */
export function buildTable(opts: ContentOptions = defaultContent, now = Math.floor(Date.now() / 1000)): NativeTable {
  return buildContent(opts, now).table;
}

/** The built-in table alone. */
export function builtinTable(): NativeTable {
  return buildTable(defaultContent);
}
