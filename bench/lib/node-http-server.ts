// node-http-server.ts: the node:http peer. One process, keep-alive, every
// request answered 200 with body "x". Run as: node node-http-server.js PORT
import * as http from "node:http";

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write("usage: node node-http-server.js PORT\n");
  process.exit(2);
}

const body = Buffer.from("x");
const server = http.createServer((_req, res) => {
  res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": "1" });
  res.end(body);
});
// Keep connections open for the whole run, however many requests they carry.
server.keepAliveTimeout = 65_000;
server.maxRequestsPerSocket = 0;
server.listen(port, "127.0.0.1");

const quit = (): void => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
};
process.on("SIGTERM", quit);
process.on("SIGINT", quit);
