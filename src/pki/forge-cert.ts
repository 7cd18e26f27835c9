/**
 * The one place that touches node-forge's certificate API for the dev PKI:
 * RSA key generation, native signing, and loading a CA. Other pki modules
 * use these so forge's loose types stay in one file.
 */
import { X509Certificate, createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import forge from 'node-forge';

/** An RSA key: the forge public key (to put in a certificate) and the private key's PKCS#8 PEM. */
export interface RsaKey {
  readonly publicKey: forge.pki.rsa.PublicKey;
  readonly keyPem: string;
}

/** sha256WithRSAEncryption (RFC 4055 §5). */
export const SHA256_WITH_RSA_OID = '1.2.840.113549.1.1.11';

/**
 * A fresh RSA-2048 key. forge delegates to node's native
 * `generateKeyPairSync` when it exists, so this takes tens of ms, not seconds.
 */
export function generateRsaKey(): RsaKey {
  const kp = forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
  const keyPem = forge.pki.privateKeyInfoToPem(forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(kp.privateKey)));
  return { publicKey: kp.publicKey, keyPem };
}

/** Loads an existing RSA private key PEM (PKCS#1 or PKCS#8); TypeError when it is not RSA. */
export function rsaKeyFromPem(keyPem: string): RsaKey {
  const key = privateKey(keyPem, 'key');
  const spki = createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
  return { publicKey: forge.pki.publicKeyFromPem(spki) as forge.pki.rsa.PublicKey, keyPem };
}

function privateKey(pem: string, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    // The library message is dropped on purpose: it can echo the input.
    throw new TypeError(`${what} is not a PEM private key`);
  }
  if (key.asymmetricKeyType !== 'rsa') throw new TypeError(`${what} must be an RSA key`);
  return key;
}

/** A CA ready to sign: its certificate, private key, and subject key identifier (hex). */
export interface LoadedCa {
  readonly cert: forge.pki.Certificate;
  readonly key: KeyObject;
  readonly keyIdHex: string;
}

/** Parses a CA certificate and key PEM; TypeError when unusable or not a matching pair. */
export function loadCa(ca: { readonly certPem: string; readonly keyPem: string }): LoadedCa {
  let cert: forge.pki.Certificate;
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(ca.certPem);
    cert = forge.pki.certificateFromPem(ca.certPem);
  } catch {
    throw new TypeError('CA certificate is not a PEM X.509 RSA certificate');
  }
  const key = privateKey(ca.keyPem, 'CA key');
  if (!x509.checkPrivateKey(key)) throw new TypeError('CA key does not match the CA certificate');
  if (!x509.ca) throw new TypeError('CA certificate is not a CA (basicConstraints cA is not true)');
  return { cert, key, keyIdHex: keyIdentifierHex(cert) };
}

/**
 * The certificate's subject key identifier (RFC 5280 §4.2.1.2 method 1:
 * SHA-1 of the subjectPublicKey). Read from the extension when present so an
 * AKI always matches what the issuer declared.
 */
export function keyIdentifierHex(cert: forge.pki.Certificate): string {
  const ext = cert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | undefined;
  if (ext?.subjectKeyIdentifier) return ext.subjectKeyIdentifier.toLowerCase();
  return forge.util.bytesToHex(cert.generateSubjectKeyIdentifier().getBytes());
}

/**
 * Signs `cert` with sha256WithRSAEncryption using node's native RSA (forge's
 * pure-JS signature costs ~20 ms per certificate; this one under 1 ms).
 * Mirrors what forge's `cert.sign` does, field by field.
 */
export function signCertificate(cert: forge.pki.Certificate, key: KeyObject): void {
  cert.signatureOid = SHA256_WITH_RSA_OID;
  cert.siginfo.algorithmOid = SHA256_WITH_RSA_OID;
  // getTBSCertificate exists at runtime but is missing from @types/node-forge.
  const tbs = (forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate(cert);
  cert.tbsCertificate = tbs;
  const der = Buffer.from(forge.asn1.toDer(tbs).getBytes(), 'binary');
  cert.signature = sign('sha256', der, key).toString('binary');
}

/** Converts a JS Date to forge's validity fields without sub-second parts (DER times have none). */
export function wholeSeconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}
