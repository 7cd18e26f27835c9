/**
 * Micro-benchmark for canonicalizeTarget (runs on every request).
 * Usage: node bench/canonical-path.ts [iterations]
 * Prints ns/op for typical (fast-path) and adversarial (slow-path) targets.
 */
import { canonicalizeTarget } from '../src/http/canonical-path.ts';
import { sanitizeRequestHeaders } from '../src/http/hygiene.ts';

const iterations = Number(process.argv[2] ?? 1_000_000);
if (!Number.isInteger(iterations) || iterations <= 0) throw new TypeError('iterations must be a positive integer');

const longEvil = '/' + '%2e%2e/'.repeat(200) + 'admin';
const cases: ReadonlyArray<readonly [string, string]> = [
  ['typical: short', '/healthz'],
  ['typical: api path', '/api/v1/orders/12345/items'],
  ['typical: with query', '/api/v1/orders?limit=10&cursor=abc'],
  ['typical: .well-known', '/.well-known/openid-configuration'],
  ['escaped: reserved', '/files/report%3a2024%20final.pdf'],
  ['adversarial: encoded traversal', '/public/%2e%2e/%2E%2E/admin'],
  ['adversarial: double slashes + dots', '//a//./b/../../c///d/./e/..'],
  ['adversarial: double-encoding', '/a/%252e%252e/%2561dmin'],
  ['adversarial: 200 x %2e%2e/', longEvil],
];

let sink = 0;
function bench(label: string, fn: () => number): void {
  for (let i = 0; i < Math.min(iterations, 50_000); i++) sink += fn(); // warm up the JIT
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) sink += fn();
  const ns = Number(process.hrtime.bigint() - start) / iterations;
  console.log(`${label.padEnd(40)} ${ns.toFixed(1).padStart(10)} ns/op`);
}

for (const [label, target] of cases) {
  bench(label, () => canonicalizeTarget(target, { encodedSlash: 'reject' }).path.length);
}

const headers = {
  host: 'orders.mesh.local',
  'user-agent': 'curl/8.5.0',
  accept: 'application/json',
  authorization: 'Bearer x.y.z',
  'content-type': 'application/json',
  'content-length': '42',
  connection: 'keep-alive',
  'x-forwarded-for': '10.0.0.1',
  'x-request-id': 'abc',
};
bench('headers: sanitize 9 typical headers', () => sanitizeRequestHeaders(headers, { keepForwarded: false }).removed.length);

if (sink === -1) console.log('unreachable'); // keep results observable so nothing is optimized away
