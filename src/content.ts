// content.ts: builds the response table: the built-in routes and the error pages.
import type { NativeTable, ResponseSpec } from "./native";

const TEXT = "Content-Type: text/plain; charset=utf-8\r\n";

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

function filler(size: number): Buffer {
  // Printable and line-broken, so a body shown in a terminal stays readable.
  const line = Buffer.from("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUV\n");
  const body = Buffer.alloc(size);
  for (let i = 0; i < size; i += line.length) line.copy(body, i, 0, Math.min(line.length, size - i));
  return body;
}

function errorPage(status: number, text: string, extra = ""): ResponseSpec {
  return { path: "", status, headers: TEXT + extra, body: Buffer.from(`${status} ${text}\n`) };
}

export function builtinTable(): NativeTable {
  const routes: ResponseSpec[] = [{ path: "/", status: 200, headers: TEXT, body: Buffer.from(INDEX) }];
  for (const [path, size] of sizedRoutes) {
    routes.push({ path, status: 200, headers: TEXT, body: size === 1 ? Buffer.from("x") : filler(size) });
  }
  const errors = [
    errorPage(400, "Bad Request"),
    errorPage(404, "Not Found"),
    errorPage(405, "Method Not Allowed", "Allow: GET, HEAD\r\n"),
    errorPage(413, "Content Too Large"),
    errorPage(414, "URI Too Long"),
    errorPage(431, "Request Header Fields Too Large"),
    errorPage(501, "Not Implemented"),
    errorPage(505, "HTTP Version Not Supported"),
  ];
  return { routes, errors };
}
