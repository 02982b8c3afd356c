// rawhttp.ts: a raw keep-alive HTTP/1.1 connection: write one GET, wait for the whole response
// (header + Content-Length bytes). No parser beyond that; used where a load tool cannot be.
import * as net from "node:net";

/** One keep-alive connection to 127.0.0.1; rt() writes one request and resolves when its whole response is in. */
export class RoundTripper {
  private buf: Buffer = Buffer.alloc(0);
  private waiting: { resolve: () => void; reject: (e: Error) => void } | null = null;
  private readonly request: Buffer;
  private constructor(
    private readonly sock: net.Socket,
    port: number,
    urlPath: string,
  ) {
    this.request = Buffer.from(`GET ${urlPath} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    sock.setNoDelay(true);
    sock.on("data", (d: Buffer) => this.onData(d));
    const fail = (e: Error): void => {
      this.waiting?.reject(e);
      this.waiting = null;
    };
    sock.on("error", fail);
    sock.on("close", () => fail(new Error("connection closed")));
  }

  /** Connects to 127.0.0.1:port (the only host the bench talks to). */
  static open(port: number, urlPath: string): Promise<RoundTripper> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: "127.0.0.1", port }, () => {
        s.off("error", reject);
        resolve(new RoundTripper(s, port, urlPath));
      });
      s.once("error", reject);
    });
  }

  rt(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.sock.write(this.request);
    });
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    const end = this.buf.indexOf("\r\n\r\n");
    if (end < 0) return;
    const head = this.buf.subarray(0, end).toString("latin1");
    const cl = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
    const total = end + 4 + cl;
    if (this.buf.length < total) return;
    this.buf = this.buf.subarray(total);
    const w = this.waiting;
    this.waiting = null;
    if (!head.startsWith("HTTP/1.1 200")) w?.reject(new Error(`unexpected response: ${head.split("\r\n")[0]}`));
    else w?.resolve();
  }

  close(): void {
    this.sock.destroy();
  }
}
