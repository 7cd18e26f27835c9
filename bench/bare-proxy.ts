/**
 * Baseline for `npm run bench`: the cheapest mTLS forwarder Node can be — a
 * TLS listener requiring client certificates that forwards every request
 * with undici and does nothing else (no identity, no JWT, no policy, no
 * audit). meshgate's cost over this is the cost of its checks.
 * Idle keep-alive connections stay open 10 minutes (bench:idle --target bare).
 *   node bench/bare-proxy.ts CERT KEY CA UPSTREAM_URL   (prints its port)
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';

const [cert, key, ca, upstream] = process.argv.slice(2) as [string, string, string, string];
const pool = new Pool(upstream, { connections: 256, pipelining: 1 });
const server = createServer({ cert: readFileSync(cert), key: readFileSync(key), ca: readFileSync(ca), requestCert: true, rejectUnauthorized: true, noDelay: true, keepAliveTimeout: 600_000 }, (req, res) => {
  pool.stream({ path: req.url ?? '/', method: 'GET', headers: { host: req.headers.host ?? '' } }, ({ statusCode, headers }) => {
    res.writeHead(statusCode, headers as Record<string, string>);
    return res;
  }).catch(() => { if (!res.headersSent) { res.writeHead(502); res.end(); } else res.destroy(); });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
process.on('SIGTERM', () => process.exit(0));
