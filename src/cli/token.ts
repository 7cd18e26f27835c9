/**
 * `meshgate token mint` — signs a development JWT (PRODUCT §1.11, §2).
 * Prints only the token; the signing key is never echoed.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '../core/duration.ts';
import { loadJwtKey } from '../pki/jwt-key.ts';
import { DEFAULT_ISSUER, RESERVED_CLAIMS, certThumbprintS256, mintToken } from '../pki/mint-token.ts';
import { EXIT_OK, EXIT_USAGE, UsageError, type CliIO, type Command } from './command.ts';

const MINT_HELP = `Usage: meshgate token mint --key DIR/jwt.key --sub S --aud A [options]

Signs an ES256 development JWT with the key made by 'meshgate certs init' and
prints it. The header kid is the key's RFC 7638 thumbprint (as in jwks.json).

Options:
  --key FILE         PKCS#8 P-256 private key (DIR/jwt.key)
  --sub S            subject
  --aud A            audience (repeat for several)
  --iss I            issuer (default ${DEFAULT_ISSUER})
  --ttl D            lifetime, e.g. 30s, 5m, 1h (default 5m)
  --claim k=v        extra claim, repeatable; v is parsed as JSON when it is
                     JSON (true, 42, ["a"]), otherwise taken as a string
  --bind-cert FILE   bind the token to this client certificate
                     (RFC 8705 cnf["x5t#S256"])
  --jti ID           token id (default: a random UUID)
`;

const HELP = `Usage: meshgate token mint [options]

Development tokens.
  mint   sign a JWT with DIR/jwt.key

Run 'meshgate token mint --help' for its options.
`;

export const tokenCommand: Command = {
  name: 'token',
  summary: 'dev tokens: token mint',
  help: HELP,
  async run(argv: string[], io: CliIO): Promise<number> {
    const [sub, ...rest] = argv;
    if (sub === undefined || sub === '--help' || sub === '-h') {
      (sub === undefined ? io.stderr : io.stdout).write(HELP);
      return sub === undefined ? EXIT_USAGE : EXIT_OK;
    }
    if (sub !== 'mint') throw new UsageError(`unknown subcommand '${sub}' (expected mint)`);
    if (rest.includes('--help') || rest.includes('-h')) {
      io.stdout.write(MINT_HELP);
      return EXIT_OK;
    }
    return mint(rest, io);
  },
};

async function mint(args: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      key: { type: 'string' },
      sub: { type: 'string' },
      aud: { type: 'string', multiple: true },
      iss: { type: 'string', default: DEFAULT_ISSUER },
      ttl: { type: 'string', default: '5m' },
      claim: { type: 'string', multiple: true, default: [] },
      'bind-cert': { type: 'string' },
      jti: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.key === undefined) throw new UsageError('--key FILE is required');
  if (values.sub === undefined || values.sub === '') throw new UsageError('--sub S is required');
  if (values.aud === undefined || values.aud.length === 0 || values.aud.includes('')) throw new UsageError('--aud A is required');
  if (values.iss === '') throw new UsageError('--iss must not be empty');
  const ttlMs = parseDuration(values.ttl);
  if (ttlMs === undefined || ttlMs < 1000) throw new UsageError(`invalid --ttl ${JSON.stringify(values.ttl)} (expected a duration of at least 1s, e.g. 30s, 5m, 1h)`);
  const claims = parseClaims(values.claim);

  const keyPath = resolve(io.cwd, values.key);
  let keyPem: string;
  try {
    keyPem = readFileSync(keyPath, 'utf8');
    loadJwtKey(keyPem);
  } catch (err) {
    const why = err instanceof TypeError ? err.message : 'cannot read the file';
    return fail(io, `${keyPath}: ${why}`);
  }
  let bindCertPem: string | undefined;
  if (values['bind-cert'] !== undefined) {
    const certPath = resolve(io.cwd, values['bind-cert']);
    try {
      bindCertPem = readFileSync(certPath, 'utf8');
      certThumbprintS256(bindCertPem);
    } catch {
      return fail(io, `${certPath}: cannot read a PEM certificate`);
    }
  }
  const token = await mintToken({
    keyPem,
    sub: values.sub,
    aud: values.aud.length === 1 ? values.aud[0]! : values.aud,
    iss: values.iss,
    ttlSeconds: Math.floor(ttlMs / 1000),
    claims,
    ...(bindCertPem !== undefined ? { bindCertPem } : {}),
    ...(values.jti !== undefined ? { jti: values.jti } : {}),
  });
  io.stdout.write(`${token}\n`);
  return EXIT_OK;
}

/** `k=v` pairs; v is JSON when it parses as JSON, else the literal string. */
function parseClaims(pairs: readonly string[]): Record<string, unknown> {
  const out = new Map<string, unknown>();
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const k = eq < 0 ? '' : pair.slice(0, eq);
    if (k === '') throw new UsageError(`invalid --claim ${JSON.stringify(pair)} (expected k=v)`);
    if (RESERVED_CLAIMS.includes(k)) throw new UsageError(`--claim ${k}=… is not allowed: use the --${k} option (or it is set automatically)`);
    if (k === '__proto__') throw new UsageError('--claim __proto__ is not allowed');
    if (out.has(k)) throw new UsageError(`--claim ${k} given twice`);
    const raw = pair.slice(eq + 1);
    let v: unknown = raw;
    try {
      v = JSON.parse(raw);
    } catch {
      // not JSON: keep the string as written
    }
    out.set(k, v);
  }
  return Object.fromEntries(out);
}

function fail(io: CliIO, message: string): number {
  io.stderr.write(`meshgate token mint: ${message}\n`);
  return EXIT_USAGE;
}
