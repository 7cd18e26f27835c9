/**
 * `meshgate certs init | issue | revoke` — the dev PKI (PRODUCT §1.11, §2).
 * Private keys are written 0600 and never printed.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { CertifiedKey } from '../pki/create-ca.ts';
import {
  CRL_DAYS, DEFAULT_TRUST_DOMAIN, PKI_FILES, createDevPki, existingPkiFiles, gatewaySpiffeId, pkiPaths, writeDevPki,
} from '../pki/dev-pki.ts';
import { issueCert } from '../pki/issue-cert.ts';
import { InvalidCrlError } from '../pki/parse-crl.ts';
import { revokeSerial } from '../pki/revoke-serial.ts';
import { parseSpiffeId, trustDomainError } from '../core/spiffe-id.ts';
import { writeFileAtomic } from '../pki/write-file-atomic.ts';
import { EXIT_OK, EXIT_USAGE, UsageError, type CliIO, type Command } from './command.ts';

const INIT_HELP = `Usage: meshgate certs init --dir DIR [--trust-domain TD] [--force] [--json]

Creates a development PKI in DIR:
  ca.crt, ca.key            dev CA for the trust domain
  gateway.crt, gateway.key  gateway server cert (DNS localhost, IP 127.0.0.1/::1,
                            URI spiffe://TD/meshgate)
  jwt.key, jwks.json        ES256 token signing key and its public JWKS
  ca.crl                    an empty CRL (so a config with 'crl:' works)

Options:
  --dir DIR            folder to write (created if missing)
  --trust-domain TD    SPIFFE trust domain (default ${DEFAULT_TRUST_DOMAIN})
  --force              overwrite existing files
  --json               print the result as JSON
Private keys are written with mode 0600. For development only.
`;

const ISSUE_HELP = `Usage: meshgate certs issue --dir DIR --name NAME --spiffe ID [--days N] [--force] [--json]

Issues a workload client certificate signed by DIR/ca.crt and writes
DIR/NAME.crt and DIR/NAME.key (mode 0600).

Options:
  --dir DIR       PKI folder made by 'meshgate certs init'
  --name NAME     file name stem: letters, digits, '.', '-', '_'
  --spiffe ID     SPIFFE ID for the URI SAN, e.g. spiffe://mesh.local/ns/default/sa/web
  --days N        validity in days (default 30)
  --force         overwrite existing NAME.crt / NAME.key
  --json          print the result as JSON
`;

const REVOKE_HELP = `Usage: meshgate certs revoke --dir DIR (--name NAME | --cert FILE) [--json]

Adds a certificate's serial number to DIR/ca.crl (created if missing),
re-signs the CRL with the next CRL number and replaces the file atomically,
so a running gateway picks it up. Earlier revocations are kept.

Options:
  --dir DIR       PKI folder made by 'meshgate certs init'
  --name NAME     revoke DIR/NAME.crt
  --cert FILE     revoke the certificate in FILE (must be issued by DIR/ca.crt)
  --json          print the result as JSON
`;

const HELP = `Usage: meshgate certs <init|issue|revoke> [options]

Development PKI: a CA, SPIFFE workload certificates, a CRL and a JWT signing key.
  init     create DIR/ca.crt, ca.key, gateway.crt, gateway.key, jwt.key, jwks.json, ca.crl
  issue    issue DIR/NAME.crt and DIR/NAME.key for a SPIFFE ID
  revoke   add a certificate to DIR/ca.crl

Run 'meshgate certs <subcommand> --help' for its options.
`;

/** A configuration or file problem: printed without the usage hint, exit 2. */
class CertsError extends Error {}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const RESERVED_NAMES = new Set(['ca', 'gateway', 'jwt', 'jwks']);

export const certsCommand: Command = {
  name: 'certs',
  summary: 'dev PKI: certs init | issue | revoke',
  help: HELP,
  async run(argv: string[], io: CliIO): Promise<number> {
    const [sub, ...rest] = argv;
    const subs: Record<string, { help: string; run: (args: string[], io: CliIO) => Promise<number> }> = {
      init: { help: INIT_HELP, run: init },
      issue: { help: ISSUE_HELP, run: issue },
      revoke: { help: REVOKE_HELP, run: revoke },
    };
    if (sub === undefined || sub === '--help' || sub === '-h') {
      (sub === undefined ? io.stderr : io.stdout).write(HELP);
      return sub === undefined ? EXIT_USAGE : EXIT_OK;
    }
    const cmd = subs[sub];
    if (!cmd) throw new UsageError(`unknown subcommand '${sub}' (expected init, issue or revoke)`);
    if (rest.includes('--help') || rest.includes('-h')) {
      io.stdout.write(cmd.help);
      return EXIT_OK;
    }
    try {
      return await cmd.run(rest, io);
    } catch (err) {
      if (!(err instanceof CertsError)) throw err;
      io.stderr.write(`meshgate certs ${sub}: ${err.message}\n`);
      return EXIT_USAGE;
    }
  },
};

async function init(args: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      dir: { type: 'string' },
      'trust-domain': { type: 'string', default: DEFAULT_TRUST_DOMAIN },
      force: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const dir = requireDir(values.dir, io);
  const td = values['trust-domain'];
  const tdError = trustDomainError(td);
  if (tdError) throw new UsageError(`invalid --trust-domain ${JSON.stringify(td)}: ${tdError}`);
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new CertsError(`${dir} exists and is not a folder`);
  const existing = existingPkiFiles(dir);
  if (existing.length > 0 && !values.force) {
    throw new CertsError(`refusing to overwrite ${existing.join(', ')} (use --force to replace the whole PKI)`);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pki = await createDevPki({ trustDomain: td });
  const paths = writeDevPki(dir, pki);
  const caCert = new X509Certificate(pki.ca.certPem);
  if (values.json) {
    io.stdout.write(`${JSON.stringify({ dir, trustDomain: td, gatewaySpiffeId: gatewaySpiffeId(td), files: paths, caValidTo: caCert.validToDate.toISOString() }, null, 2)}\n`);
    return EXIT_OK;
  }
  const desc: Record<keyof typeof PKI_FILES, string> = {
    caCert: `dev CA certificate, valid until ${caCert.validToDate.toISOString().slice(0, 10)}`,
    caKey: 'dev CA private key (0600)',
    gatewayCert: `gateway certificate: ${gatewaySpiffeId(td)}, DNS localhost, IP 127.0.0.1 and ::1`,
    gatewayKey: 'gateway private key (0600)',
    jwtKey: 'ES256 token signing key (0600)',
    jwks: `public JWKS, kid ${pki.jwks.keys[0]?.kid ?? ''}`,
    crl: 'empty certificate revocation list',
  };
  const lines = (Object.keys(PKI_FILES) as (keyof typeof PKI_FILES)[]).map((k) => `  ${paths[k]}\n      ${desc[k]}`);
  io.stdout.write(`Created a dev PKI for trust domain ${td}:\n${lines.join('\n')}\n` +
    `Next: meshgate certs issue --dir ${dir} --name web --spiffe spiffe://${td}/ns/default/sa/web\n`);
  return EXIT_OK;
}

async function issue(args: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      dir: { type: 'string' },
      name: { type: 'string' },
      spiffe: { type: 'string' },
      days: { type: 'string', default: '30' },
      force: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const dir = requireDir(values.dir, io);
  const name = requireName(values.name);
  if (values.spiffe === undefined) throw new UsageError('--spiffe ID is required');
  const id = parseSpiffeId(values.spiffe);
  if (!id.ok) throw new UsageError(`invalid --spiffe ${JSON.stringify(values.spiffe)}: ${id.error}`);
  if (!/^\d{1,5}$/.test(values.days) || Number(values.days) < 1 || Number(values.days) > 36500) {
    throw new UsageError(`invalid --days ${JSON.stringify(values.days)} (expected a whole number of days, 1–36500)`);
  }
  const ca = readCa(dir);
  const caTd = caTrustDomain(ca.certPem);
  if (caTd !== undefined && caTd !== id.trustDomain) {
    io.stderr.write(`warning: ${values.spiffe} is not in the CA's trust domain ${caTd}; a gateway for ${caTd} will reject it\n`);
  }
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  const existing = [certPath, keyPath].filter((p) => existsSync(p));
  if (existing.length > 0 && !values.force) throw new CertsError(`refusing to overwrite ${existing.join(', ')} (use --force)`);
  const cert = issueCert({ ca, commonName: name, spiffeIds: [values.spiffe], days: Number(values.days), clientAuth: true });
  writeFileAtomic(keyPath, cert.keyPem, 0o600);
  writeFileAtomic(certPath, cert.certPem);
  const validTo = new X509Certificate(cert.certPem).validToDate.toISOString();
  if (values.json) {
    io.stdout.write(`${JSON.stringify({ spiffeId: values.spiffe, serialNumber: cert.serialNumber, validTo, cert: certPath, key: keyPath }, null, 2)}\n`);
  } else {
    io.stdout.write(`Issued ${values.spiffe} (serial ${cert.serialNumber}, valid until ${validTo.slice(0, 10)}):\n  ${certPath}\n  ${keyPath} (0600)\n`);
  }
  return EXIT_OK;
}

async function revoke(args: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      dir: { type: 'string' },
      name: { type: 'string' },
      cert: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const dir = requireDir(values.dir, io);
  if ((values.name === undefined) === (values.cert === undefined)) throw new UsageError('give exactly one of --name NAME or --cert FILE');
  const certPath = values.name !== undefined ? join(dir, `${requireName(values.name, true)}.crt`) : resolve(io.cwd, values.cert!);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(readFileSync(certPath));
  } catch (err) {
    throw new CertsError(`cannot read a certificate from ${certPath}${errCode(err)}`);
  }
  const ca = readCa(dir);
  const caCert = new X509Certificate(ca.certPem);
  if (!cert.checkIssued(caCert) || !cert.verify(caCert.publicKey)) {
    throw new CertsError(`${certPath} was not issued by ${join(dir, PKI_FILES.caCert)}`);
  }
  // A CA listing itself in its own CRL means nothing to verifiers; re-run init instead.
  if (cert.fingerprint256 === caCert.fingerprint256) throw new CertsError('cannot revoke the CA certificate itself (run certs init --force for a new CA)');
  const crlPath = pkiPaths(dir).crl;
  const crlPem = existsSync(crlPath) ? readFileSync(crlPath, 'utf8') : undefined;
  let result;
  try {
    result = revokeSerial({ ca, crlPem, serialNumber: cert.serialNumber, days: CRL_DAYS });
  } catch (err) {
    if (!(err instanceof InvalidCrlError)) throw err;
    throw new CertsError(`${crlPath}: ${err.message}; refusing to replace it (move it away to start a new CRL)`);
  }
  if (!result.alreadyRevoked) writeFileAtomic(crlPath, result.crlPem);
  const serial = cert.serialNumber.toLowerCase();
  if (values.json) {
    io.stdout.write(`${JSON.stringify({ serialNumber: serial, alreadyRevoked: result.alreadyRevoked, crl: crlPath, crlNumber: result.crlNumber.toString(), revokedCount: result.revokedCount }, null, 2)}\n`);
  } else if (result.alreadyRevoked) {
    io.stdout.write(`Serial ${serial} was already revoked in ${crlPath}; nothing changed.\n`);
  } else {
    io.stdout.write(`Revoked serial ${serial} (${certPath}).\n  ${crlPath}: CRL number ${result.crlNumber}, ${result.revokedCount} revoked certificate(s)\n`);
  }
  return EXIT_OK;
}

function requireDir(dir: string | undefined, io: CliIO): string {
  if (dir === undefined || dir === '') throw new UsageError('--dir DIR is required');
  return resolve(io.cwd, dir);
}

function requireName(name: string | undefined, allowReserved = false): string {
  if (name === undefined) throw new UsageError('--name NAME is required');
  if (!NAME_RE.test(name)) throw new UsageError(`invalid --name ${JSON.stringify(name)} (letters, digits, '.', '-', '_'; no path separators)`);
  if (!allowReserved && RESERVED_NAMES.has(name)) throw new UsageError(`--name ${name} is reserved for the files of 'certs init'`);
  return name;
}

/** The CA of a PKI folder; CertsError (exit 2) when it is missing or unusable. */
function readCa(dir: string): CertifiedKey {
  const p = pkiPaths(dir);
  if (!existsSync(p.caCert) || !existsSync(p.caKey)) {
    throw new CertsError(`${p.caCert} or ${p.caKey} not found; run 'meshgate certs init --dir ${dir}' first`);
  }
  const ca = { certPem: readFileSync(p.caCert, 'utf8'), keyPem: readFileSync(p.caKey, 'utf8') };
  try {
    const x = new X509Certificate(ca.certPem);
    if (!x.ca || !x.checkPrivateKey(createPrivateKey(ca.keyPem))) throw new Error('not a CA pair');
  } catch {
    // The library message is not shown: it could quote key material.
    throw new CertsError(`${p.caCert} and ${p.caKey} are not a usable CA certificate and key pair`);
  }
  return ca;
}

/** The trust domain named by the CA certificate's `spiffe://TD` URI SAN, if any. */
function caTrustDomain(certPem: string): string | undefined {
  const san = new X509Certificate(certPem).subjectAltName ?? '';
  const m = /URI:spiffe:\/\/([^/,\s]+)/.exec(san);
  return m?.[1];
}

function errCode(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('E') && !code.startsWith('ERR_') ? ` (${code})` : '';
}
