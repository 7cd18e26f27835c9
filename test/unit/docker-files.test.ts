/**
 * Docker cannot run on this machine, so the container files are checked
 * statically: the sidecar config they ship must validate against the schema,
 * the image must run as a non-root user on Node 24, and the compose and
 * Kubernetes files must wire meshgate as a sidecar of the service.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseAllDocuments, parse } from 'yaml';
import { parseConfigText } from '../../src/config/load.ts';

const root = new URL('../../', import.meta.url);
const read = (p: string): string => readFileSync(new URL(p, root), 'utf8');

test('the Dockerfile builds on Node 24 and runs meshgate as a non-root user', () => {
  const df = read('docker/Dockerfile');
  assert.match(df, /^FROM node:24[-\w.]*$/m);
  const user = /^USER\s+(\S+)$/m.exec(df)?.[1];
  assert.ok(user && user !== 'root' && user !== '0', `USER must be non-root, got ${user}`);
  assert.match(df, /ENTRYPOINT \["node", "bin\/meshgate\.js"\]/);
  assert.match(df, /npm ci --omit=dev/);
});

test('the sidecar config shipped for containers validates against the config schema', () => {
  const cfg = parseConfigText(read('docker/meshgate.yaml'), { baseDir: '/etc/meshgate', env: { MESHGATE_ADMIN_TOKEN: 'x' }, fileName: 'docker/meshgate.yaml' });
  assert.equal(cfg.tls.mode, 'strict');
  assert.equal(cfg.upstream.url, 'http://127.0.0.1:8080');
  assert.equal(cfg.routes.at(-1)?.auth, 'mtls+jwt');
  // Reachable beyond loopback, so never plain HTTP: the admin token must not cross the network in clear.
  assert.equal(cfg.admin.host, '0.0.0.0');
  assert.equal(cfg.admin.tls, true);
});

test('compose runs meshgate in the service network namespace, read-only, without capabilities', () => {
  const compose = parse(read('docker/compose.yaml')) as { services: Record<string, Record<string, unknown>> };
  const mg = compose.services.meshgate as { network_mode?: string; read_only?: boolean; cap_drop?: string[] };
  assert.equal(mg.network_mode, 'service:orders');
  assert.equal(mg.read_only, true);
  assert.deepEqual(mg.cap_drop, ['ALL']);
  assert.ok(compose.services.orders, 'the sample service exists');
});

test('the Kubernetes Deployment has meshgate as a hardened sidecar container with probes', () => {
  const docs = parseAllDocuments(read('docker/k8s/deployment.yaml')).map((d) => d.toJS() as { kind: string; spec: Record<string, unknown> });
  const dep = docs.find((d) => d.kind === 'Deployment') as unknown as { spec: { template: { spec: { securityContext: { runAsNonRoot: boolean }; containers: { name: string; securityContext?: Record<string, unknown>; readinessProbe?: { httpGet: { path: string } } }[] } } } };
  const pod = dep.spec.template.spec;
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.deepEqual(pod.containers.map((c) => c.name).sort(), ['meshgate', 'orders']);
  const mg = pod.containers.find((c) => c.name === 'meshgate');
  assert.equal(mg?.readinessProbe?.httpGet.path, '/readyz');
  assert.equal(mg?.securityContext?.readOnlyRootFilesystem, true);
  assert.equal(mg?.securityContext?.allowPrivilegeEscalation, false);
});
