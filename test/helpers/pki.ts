/**
 * Test PKI for every area's tests: a CA, gateway and client certificates, an
 * empty CRL and a JWT key + JWKS in the same layout as `meshgate certs init`,
 * plus adversarial client certificates and token minting.
 *
 *   const pki = await makeTestPki(dir, { trustDomain: 'mesh.local' });
 *   tls.createServer({ ...pki.tlsServerOptions() }, ...);
 *   tls.connect({ port, ...pki.tlsClientOptions(pki.adversarial().expired) });
 *   const token = await pki.mintToken({ sub: 'alice', aud: 'orders' });
 *
 * Fast by design: only the CA key is generated per PKI; all leaf certificates
 * in the process share one RSA key (harmless for tests: certificates, serials
 * and fingerprints still differ).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CertifiedKey } from '../../src/pki/create-ca.ts';
import { createCa } from '../../src/pki/create-ca.ts';
import { DEFAULT_TRUST_DOMAIN, createDevPki, pkiPaths, writeDevPki, type PkiPaths } from '../../src/pki/dev-pki.ts';
import { generateRsaKey } from '../../src/pki/forge-cert.ts';
import { issueCert, type IssueCertOptions, type IssuedCert } from '../../src/pki/issue-cert.ts';
import type { Jwks } from '../../src/pki/jwt-key.ts';
import { DEFAULT_ISSUER, mintToken, type MintTokenOptions } from '../../src/pki/mint-token.ts';
import { revokeSerial } from '../../src/pki/revoke-serial.ts';
import { writeFileAtomic } from '../../src/pki/write-file-atomic.ts';

/** A certificate with its key, serial, and (when written) file paths. */
export interface TestCert extends IssuedCert {
  readonly spiffeIds: readonly string[];
  readonly certPath: string;
  readonly keyPath: string;
}

export interface IssueClientOptions extends Partial<Omit<IssueCertOptions, 'ca'>> {
  /** File stem in the PKI dir (default: a unique `cert-N`). */
  readonly name?: string;
  /** Sign with this CA instead of the PKI's own (e.g. `pki.otherCa()`). */
  readonly ca?: CertifiedKey;
  /** Generate a new RSA key instead of the shared leaf key. */
  readonly freshKey?: boolean;
}

/** Client certificates that a gateway must refuse, one per failure mode. */
export interface AdversarialCerts {
  /** Two URI SANs (SPIFFE X509-SVID: exactly one). */
  readonly twoUris: TestCert;
  /** cA=true certificate issued by the trusted CA, used as a client cert. */
  readonly caAsClient: TestCert;
  /** notAfter in the past: the TLS handshake fails. */
  readonly expired: TestCert;
  /** notBefore in the future: the TLS handshake fails. */
  readonly notYetValid: TestCert;
  /** Correct SPIFFE ID, signed by an untrusted CA: the TLS handshake fails. */
  readonly otherCa: TestCert;
  /** Trusted CA, but SPIFFE ID in trust domain `other.test`. */
  readonly otherTrustDomain: TestCert;
  /** Trusted CA, no URI SAN at all. */
  readonly noUri: TestCert;
  /** Trusted CA, URI SAN that is not a valid SPIFFE ID (`..` segment). */
  readonly invalidSpiffeId: TestCert;
  /** Trusted CA, extKeyUsage serverAuth only: OpenSSL refuses it as a client cert. */
  readonly serverAuthOnly: TestCert;
}

export interface TestPki {
  readonly dir: string;
  readonly trustDomain: string;
  /** Paths of ca.crt, ca.key, gateway.crt, gateway.key, jwt.key, jwks.json, ca.crl. */
  readonly paths: PkiPaths;
  readonly ca: CertifiedKey;
  readonly gateway: TestCert;
  /** `client.crt`/`client.key`: spiffe://TD/ns/default/sa/client, clientAuth. */
  readonly client: TestCert;
  readonly jwtKeyPem: string;
  readonly jwks: Jwks;
  /** The JWKS kid (RFC 7638 thumbprint) that minted tokens carry. */
  readonly kid: string;
  /** Issues (and writes to DIR/NAME.crt|key) another client certificate. */
  issueClient(opts?: IssueClientOptions): TestCert;
  /** A second, untrusted CA (trust domain `other.test`), created on first use. */
  otherCa(): CertifiedKey;
  /** The adversarial client certificates, created on first use. */
  adversarial(): AdversarialCerts;
  /** Adds certificates (or hex serials) to DIR/ca.crl, re-signed and atomically replaced. */
  revoke(...certs: (IssuedCert | string)[]): void;
  /** Mints an ES256 token with the PKI's key; defaults sub = client SPIFFE ID, aud = `orders`. */
  mintToken(opts?: Partial<MintTokenOptions>): Promise<string>;
  /** `tls.createServer` options: gateway cert/key, CA, CRL, client cert required. */
  tlsServerOptions(): { key: string; cert: string; ca: string; crl: string; requestCert: true; rejectUnauthorized: true };
  /** `tls.connect` options presenting `cert` (default the client), trusting the CA. */
  tlsClientOptions(cert?: IssuedCert): { key: string; cert: string; ca: string; servername: string };
}

export const TEST_ISSUER = DEFAULT_ISSUER;
export const TEST_AUDIENCE = 'orders';
export const OTHER_TRUST_DOMAIN = 'other.test';

let sharedLeafKey: string | undefined;
function leafKeyPem(): string {
  sharedLeafKey ??= generateRsaKey().keyPem;
  return sharedLeafKey;
}

/** Creates the test PKI in `dir` (created if missing). */
export async function makeTestPki(dir: string, opts: { trustDomain?: string; now?: Date } = {}): Promise<TestPki> {
  const trustDomain = opts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const now = opts.now ?? new Date();
  mkdirSync(dir, { recursive: true });
  const dev = await createDevPki({ trustDomain, now, leafKeyPem: leafKeyPem() });
  const paths = writeDevPki(dir, dev);
  let counter = 0;
  let other: CertifiedKey | undefined;
  let adversarial: AdversarialCerts | undefined;

  const issueClient = (o: IssueClientOptions = {}): TestCert => {
    const name = o.name ?? `cert-${++counter}`;
    const { name: _n, ca, freshKey, ...rest } = o;
    const spiffeIds = o.spiffeIds ?? [`spiffe://${trustDomain}/ns/default/sa/${name}`];
    const cert = issueCert({
      commonName: name,
      now,
      ...rest,
      spiffeIds,
      ca: ca ?? dev.ca,
      ...(freshKey ? {} : { keyPem: o.keyPem ?? leafKeyPem() }),
    });
    const certPath = join(dir, `${name}.crt`);
    const keyPath = join(dir, `${name}.key`);
    writeFileAtomic(keyPath, cert.keyPem, 0o600);
    writeFileAtomic(certPath, cert.certPem);
    return { ...cert, spiffeIds, certPath, keyPath };
  };
  const otherCa = (): CertifiedKey => {
    other ??= createCa({ commonName: 'untrusted test CA', trustDomain: OTHER_TRUST_DOMAIN, days: 365, now });
    writeFileAtomic(join(dir, 'other-ca.crt'), other.certPem);
    return other;
  };
  const day = 86_400_000;
  const id = (sa: string, td = trustDomain) => `spiffe://${td}/ns/default/sa/${sa}`;
  const client = issueClient({ name: 'client', spiffeIds: [id('client')] });

  return {
    dir,
    trustDomain,
    paths,
    ca: dev.ca,
    gateway: { ...dev.gateway, spiffeIds: [`spiffe://${trustDomain}/meshgate`], certPath: paths.gatewayCert, keyPath: paths.gatewayKey },
    client,
    jwtKeyPem: dev.jwtKeyPem,
    jwks: dev.jwks,
    kid: dev.jwks.keys[0]!.kid,
    issueClient,
    otherCa,
    adversarial(): AdversarialCerts {
      adversarial ??= {
        twoUris: issueClient({ name: 'adv-two-uris', spiffeIds: [id('client'), id('second')] }),
        caAsClient: issueClient({ name: 'adv-ca-as-client', spiffeIds: [id('intermediate')], isCa: true }),
        expired: issueClient({ name: 'adv-expired', spiffeIds: [id('expired')], notBefore: new Date(now.getTime() - 10 * day), notAfter: new Date(now.getTime() - day) }),
        notYetValid: issueClient({ name: 'adv-not-yet-valid', spiffeIds: [id('future')], notBefore: new Date(now.getTime() + day), notAfter: new Date(now.getTime() + 10 * day) }),
        otherCa: issueClient({ name: 'adv-other-ca', spiffeIds: [id('client')], ca: otherCa() }),
        otherTrustDomain: issueClient({ name: 'adv-other-trust-domain', spiffeIds: [id('client', OTHER_TRUST_DOMAIN)] }),
        noUri: issueClient({ name: 'adv-no-uri', spiffeIds: [] }),
        invalidSpiffeId: issueClient({ name: 'adv-invalid-spiffe-id', spiffeIds: [`spiffe://${trustDomain}/ns/../sa/client`] }),
        serverAuthOnly: issueClient({ name: 'adv-server-auth-only', spiffeIds: [id('server-only')], clientAuth: false, serverAuth: true }),
      };
      return adversarial;
    },
    revoke(...certs: (IssuedCert | string)[]): void {
      for (const c of certs) {
        const serialNumber = typeof c === 'string' ? c : c.serialNumber;
        const r = revokeSerial({ ca: dev.ca, crlPem: readFileSync(paths.crl, 'utf8'), serialNumber, now });
        if (!r.alreadyRevoked) writeFileAtomic(paths.crl, r.crlPem);
      }
    },
    mintToken(o: Partial<MintTokenOptions> = {}): Promise<string> {
      return mintToken({ keyPem: dev.jwtKeyPem, sub: client.spiffeIds[0]!, aud: TEST_AUDIENCE, iss: TEST_ISSUER, ...o });
    },
    tlsServerOptions() {
      return { key: dev.gateway.keyPem, cert: dev.gateway.certPem, ca: dev.ca.certPem, crl: readFileSync(paths.crl, 'utf8'), requestCert: true, rejectUnauthorized: true } as const;
    },
    tlsClientOptions(cert: IssuedCert = client) {
      return { key: cert.keyPem, cert: cert.certPem, ca: dev.ca.certPem, servername: 'localhost' };
    },
  };
}

/** The paths `certs init` would write in `dir` (re-exported for config fixtures). */
export { pkiPaths };
