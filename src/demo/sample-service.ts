/**
 * The demo's sample upstream: a tiny plain-HTTP service on loopback that
 * answers every request with what it received — method, path, and the
 * identity headers meshgate set — so a curl shows what the service sees.
 */
import { createServer, type Server } from 'node:http';

export function createSampleService(): Server {
  return createServer((req, res) => {
    let bytes = 0;
    req.on('data', (c: Buffer) => { bytes += c.length; });
    req.on('end', () => {
      const h = req.headers;
      const body = JSON.stringify({
        service: 'orders (meshgate demo upstream)',
        method: req.method,
        path: req.url,
        bodyBytes: bytes,
        identity: {
          principal: h['x-meshgate-principal'] ?? null,
          issuer: h['x-meshgate-issuer'] ?? null,
          peer: h['x-meshgate-peer'] ?? null,
          xfcc: h['x-forwarded-client-cert'] ?? null,
          requestId: h['x-request-id'] ?? null,
        },
      }, null, 2);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) + 1 });
      res.end(`${body}\n`);
    });
  });
}
