/**
 * `meshgate demo` (what `npm start` runs): dev certificates on first run, a
 * sample upstream service, meshgate in front of it with policies/meshgate.yaml,
 * and ready-to-paste curl commands showing a 200, a 401 and a 403.
 * `--check` performs those three requests itself and exits 0 only if they
 * answer 200, 401 and 403 — the README's first command, tested.
 */
import { existsSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { Gateway } from '../app.ts';
import { ConfigError, loadConfig } from '../config/load.ts';
import { createLogger } from '../core/log.ts';
import { createSampleService } from '../demo/sample-service.ts';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, type CliIO, type Command } from './command.ts';
import { main } from './main.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

async function cli(args: string[], io: CliIO): Promise<string> {
  let out = '';
  const capture = new Writable({ write(chunk: Buffer, _e, cb) { out += chunk.toString(); cb(); } });
  const code = await main(args, { ...io, stdout: capture });
  if (code !== 0) throw new Error(`meshgate ${args.slice(0, 2).join(' ')} failed (exit ${code})`);
  return out;
}

export const demoCommand: Command = {
  name: 'demo',
  summary: 'start the demo',
  help: `Usage: meshgate demo [-c FILE] [--check] [--log-level LEVEL]

Generates dev certificates into .dev/certs on first run (CA, gateway, JWT key,
and a client certificate spiffe://mesh.local/ns/default/sa/client), starts a
sample service on the upstream address of the config, starts meshgate in front
of it and prints curl commands to try. Ctrl-C stops both.

Options:
  -c, --config FILE     configuration (default policies/meshgate.yaml)
      --check           make the three demo requests, print their statuses, exit 0 if
                        they are 200, 401 and 403, else 1
      --log-level LEVEL log level (default warn, so the instructions stay readable)
  -h, --help            show this help
`,
  async run(argv: string[], io: CliIO): Promise<number> {
    const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, check: { type: 'boolean' }, 'log-level': { type: 'string' } }, strict: true });
    const configFile = values.config ? resolve(io.cwd, values.config) : join(ROOT, 'policies/meshgate.yaml');
    const certs = join(ROOT, '.dev/certs');
    const say = (s: string): void => { io.stdout.write(`${s}\n`); };
    if (!existsSync(join(certs, 'ca.crt'))) {
      say(`Generating dev certificates in ${relative(io.cwd, certs) || certs} …`);
      await cli(['certs', 'init', '--dir', certs, '--trust-domain', 'mesh.local'], io);
    }
    if (!existsSync(join(certs, 'client.crt'))) {
      await cli(['certs', 'issue', '--dir', certs, '--name', 'client', '--spiffe', 'spiffe://mesh.local/ns/default/sa/client', '--days', '365'], io);
    }
    const env = { ...io.env, MESHGATE_ADMIN_TOKEN: io.env.MESHGATE_ADMIN_TOKEN ?? 'dev-admin-token' };
    let cfg;
    try {
      cfg = await loadConfig(configFile, env);
    } catch (e) {
      if (e instanceof ConfigError) { io.stderr.write(`${e.message}\n`); return EXIT_USAGE; }
      throw e;
    }
    const up = new URL(cfg.upstream.url);
    const service = createSampleService();
    service.listen(Number(up.port || 80), up.hostname);
    try {
      await once(service, 'listening');
    } catch (e) {
      io.stderr.write(`meshgate demo: cannot start the sample service on ${up.host}: ${(e as Error).message}\n`);
      return EXIT_USAGE;
    }
    const log = createLogger(values['log-level'] ?? 'warn');
    let gw: Gateway;
    try {
      gw = await Gateway.start(cfg, { log, configFile, env });
    } catch (e) {
      service.close();
      io.stderr.write(`meshgate demo: cannot start meshgate: ${(e as Error).message}\n`);
      return EXIT_USAGE;
    }
    const token = (await cli(['token', 'mint', '--key', join(certs, 'jwt.key'), '--sub', 'alice', '--aud', 'orders', '--ttl', '1h'], io)).trim();
    const base = `https://localhost:${gw.address.port}`;
    const rel = relative(io.cwd, certs) || '.';
    const curl = `curl -s --cacert ${rel}/ca.crt --cert ${rel}/client.crt --key ${rel}/client.key`;
    const admin = `http://${gw.adminAddress.host}:${gw.adminAddress.port}`;
    const stop = async (): Promise<void> => { await gw.stop(); await new Promise((r) => service.close(r)); };

    if (values.check) {
      const dispatcher = new Agent({ connect: { ca: readFileSync(join(certs, 'ca.crt')), cert: readFileSync(join(certs, 'client.crt')), key: readFileSync(join(certs, 'client.key')) } });
      const probe = async (path: string, withToken: boolean): Promise<number> => {
        const r = await request(`${base}${path}`, { dispatcher, headers: withToken ? { authorization: `Bearer ${token}` } : {} });
        await r.body.text();
        return r.statusCode;
      };
      const got = [await probe('/orders', true), await probe('/orders', false), await probe('/admin/users', true)];
      await dispatcher.close();
      await stop();
      say(`demo check: GET /orders with token → ${got[0]}, without token → ${got[1]}, GET /admin/users → ${got[2]}`);
      return got[0] === 200 && got[1] === 401 && got[2] === 403 ? EXIT_OK : EXIT_FAILED;
    }

    say(`
meshgate is running: ${base} → sample service ${cfg.upstream.url}
Admin: ${admin}/healthz  ${admin}/readyz  ${admin}/metrics

A token for alice (audience "orders", valid 1h):
  export TOKEN=${token}

Try (client certificate spiffe://mesh.local/ns/default/sa/client):
  ${curl} -H "Authorization: Bearer $TOKEN" ${base}/orders        # 200: allowed, see the identity headers
  ${curl} ${base}/orders                                          # 401: jwt_missing
  ${curl} -H "Authorization: Bearer $TOKEN" ${base}/admin/users   # 403: authz_no_matching_rule
  ${curl} --path-as-is ${base}/public/../admin/users              # 401: normalized to /admin/users (needs a token)

Audit log: ${relative(io.cwd, cfg.audit.dir) || cfg.audit.dir}   verify it with: npx meshgate audit verify ${relative(io.cwd, cfg.audit.dir) || cfg.audit.dir}
Mint more tokens: npx meshgate token mint --key ${rel}/jwt.key --sub bob --aud orders
Ctrl-C to stop.`);
    await new Promise<void>((r) => { process.once('SIGINT', () => r()); process.once('SIGTERM', () => r()); });
    await stop();
    return EXIT_OK;
  },
};
