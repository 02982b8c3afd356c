// conns-client.ts: the client process of bench/conns.ts. Opens COUNT keep-alive connections to
// 127.0.0.1:PORT in batches of BATCH, one GET on each (so the server has served every one), then
// prints "READY ok failed" and holds them, idle, until SIGTERM or HOLD seconds pass.
//   node conns-client.js PORT COUNT BATCH HOLD
import { RoundTripper } from "./rawhttp";

const [port, count, batch, hold] = process.argv.slice(2, 6).map(Number);
if (![port, count, batch, hold].every((n) => n !== undefined && Number.isInteger(n) && n > 0)) {
  process.stderr.write("usage: node conns-client.js PORT COUNT BATCH HOLD_SECONDS\n");
  process.exit(2);
}

const held: RoundTripper[] = [];
let failed = 0;
let firstError = "";

async function one(): Promise<void> {
  try {
    const c = await RoundTripper.open(port!, "/1b");
    held.push(c);
    await c.rt();
  } catch (e) {
    failed++;
    if (firstError === "") firstError = e instanceof Error ? e.message : String(e);
  }
}

async function main(): Promise<void> {
  for (let done = 0; done < count!; done += batch!) {
    const n = Math.min(batch!, count! - done);
    await Promise.all(Array.from({ length: n }, one));
  }
  process.stdout.write(`READY ${count! - failed} ${failed}${firstError !== "" ? ` first error: ${firstError}` : ""}\n`);
}

const quit = (): void => {
  for (const c of held) c.close();
  process.exit(0);
};
process.on("SIGTERM", quit);
process.on("SIGINT", quit);
setTimeout(quit, hold! * 1000); // bounded even if nobody stops us
void main();
