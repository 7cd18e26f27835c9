/**
 * A meshgate process for the benchmarks: writes a configuration in the
 * canonical shape (mTLS strict + ES256 JWT from a JWKS file + Casbin RBAC +
 * audit on) and starts `meshgate run` pinned to a core.
 */
import type { ChildProcess } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, spawnPinned } from './proc.ts';

/** The issuer and audience every bench token carries. */
export const BENCH_ISSUER = 'https://issuer.mesh.local';
export const BENCH_AUDIENCE = 'orders';

/** Inputs of a bench configuration; paths relative to `dir` or absolute. */
export interface MeshgateConfigOptions {
  readonly dir: string;
  /** Folder written by `meshgate certs init` (relative to dir or absolute). */
  readonly certs: string;
  readonly upstreamPort: number;
  readonly model: string;
  readonly policy: string;
  /** audit.dir (default "audit"). */
  readonly auditDir?: string;
  /** listen.idleTimeout (default the product's 60s). */
  readonly idleTimeout?: string;
  /** tls.crl as YAML (default `<certs>/ca.crl`). */
  readonly crl?: string;
  /** Extra top-level YAML appended verbatim (e.g. "workers: 2"). */
  readonly extraYaml?: string;
}

/** Writes `<dir>/meshgate.yaml`; returns its path. */
export function writeMeshgateConfig(o: MeshgateConfigOptions): string {
  const c = o.certs;
  const idle = o.idleTimeout ? `, idleTimeout: ${o.idleTimeout}` : '';
  const yaml = `listen: { host: 127.0.0.1, port: 0${idle} }
admin: { host: 127.0.0.1, port: 0 }
upstream: { url: "http://127.0.0.1:${o.upstreamPort}" }
tls: { cert: ${c}/gateway.crt, key: ${c}/gateway.key, clientCa: ${c}/ca.crt, crl: ${o.crl ?? `${c}/ca.crl`}, mode: strict, trustDomains: [mesh.local] }
jwt:
  issuers:
    - { issuer: "${BENCH_ISSUER}", audiences: [${BENCH_AUDIENCE}], jwksFile: ${c}/jwks.json, algorithms: [ES256] }
authz: { model: ${o.model}, policy: ${o.policy} }
routes:
  - { match: { pathPrefix: / }, auth: mtls+jwt }
audit: { dir: ${o.auditDir ?? 'audit'} }
log: { level: info }
${o.extraYaml ?? ''}
`;
  const file = join(o.dir, 'meshgate.yaml');
  writeFileSync(file, yaml);
  return file;
}

/** A running meshgate. */
export interface MeshgateProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  /** 0 until a log line has named it. */
  readonly adminPort: number;
  /** Every log line seen so far (JSON text), for reload checks. */
  readonly logs: string[];
}

/**
 * Starts `meshgate run -c file` on `cores`; resolves once it logs its
 * listening address. `prefix` wraps the command (e.g. prlimit for more fds).
 */
export function startMeshgate(configFile: string, cores: string, prefix: readonly string[] = []): Promise<MeshgateProcess> {
  // For profiling a bench run (docs/performance.md): MESHGATE_BENCH_NODE_FLAGS="--cpu-prof --trace-gc" is
  // passed to meshgate's node, and MESHGATE_BENCH_LOG=file receives everything meshgate prints.
  const nodeFlags = process.env.MESHGATE_BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? [];
  const logFile = process.env.MESHGATE_BENCH_LOG;
  const child = spawnPinned([...prefix, process.execPath, ...nodeFlags, join(ROOT, 'bin/meshgate.js'), 'run', '-c', configFile], cores);
  const logs: string[] = [];
  return new Promise((res, rej) => {
    let buf = '';
    let done = false;
    let adminPort = 0;
    child.stdout?.on('data', (c: Buffer) => {
      buf += c;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        logs.push(line);
        if (logFile) appendFileSync(logFile, `${line}\n`);
        if (logs.length > 5000) logs.splice(0, 1000);
        let rec: { listen?: { port?: number }; admin?: unknown } = {};
        try { rec = JSON.parse(line) as typeof rec; } catch { continue; }
        const a = rec.admin;
        // Under `workers:` the primary owns the admin listener and workers log admin: "primary".
        if (typeof a === 'object' && a !== null && typeof (a as { port?: unknown }).port === 'number') adminPort ||= (a as { port: number }).port;
        if (typeof rec.listen?.port === 'number' && !done) {
          done = true;
          const port = rec.listen.port;
          res({ child, pid: child.pid as number, port, get adminPort() { return adminPort; }, logs });
        }
      }
    });
    child.stderr?.on('data', (c: Buffer) => process.stderr.write(c));
    child.once('exit', (code) => { if (!done) rej(new Error(`meshgate exited ${code} before listening`)); });
  });
}
