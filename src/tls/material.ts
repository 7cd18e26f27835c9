/**
 * The listener's TLS material: server cert + key, client CA bundle, CRLs.
 *
 * Files are re-read when they change and swapped in with
 * `tls.Server#setSecureContext`, which applies to new handshakes only —
 * established connections and in-flight requests keep their session. A new
 * set of files is validated as a whole (parses, key matches cert, OpenSSL
 * accepts it as a secure context) before it replaces the old one; a broken
 * or half-written update is rejected, logged and counted, and the previous
 * material keeps serving (PRODUCT §1.1).
 */
import { createHash, X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { TlsConfig } from '../config/schema.ts';
import type { Logger } from '../core/log.ts';
import { StatusTracker, type ComponentStatus } from '../core/status.ts';
import { watchFiles, type FileWatcher } from '../core/watch.ts';

export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
  readonly clientCa: string;
  readonly crl: readonly string[];
}

export interface LoadedMaterial {
  readonly options: SecureContextOptions;
  readonly version: string;
  /** Server certificate notAfter, for the expiry metric. */
  readonly notAfter: Date;
}

export function tlsFiles(cfg: TlsConfig): TlsFiles {
  const crl = cfg.crl === undefined ? [] : Array.isArray(cfg.crl) ? cfg.crl : [cfg.crl];
  return { cert: cfg.cert, key: cfg.key, clientCa: cfg.clientCa, crl };
}

/** Reads and validates one complete set of TLS files; throws with the file named. */
export async function loadMaterial(files: TlsFiles, minVersion: 'TLSv1.2' | 'TLSv1.3'): Promise<LoadedMaterial> {
  const read = async (path: string): Promise<Buffer> => {
    try { return await readFile(path); } catch (e) { throw new Error(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? 'error'})`, { cause: e }); }
  };
  const [cert, key, ca, ...crls] = await Promise.all([read(files.cert), read(files.key), read(files.clientCa), ...files.crl.map(read)]);
  let leaf: X509Certificate;
  try { leaf = new X509Certificate(cert as Buffer); } catch (e) { throw new Error(`${files.cert}: not a PEM certificate`, { cause: e }); }
  try {
    if (!leaf.checkPrivateKey(createPrivateKey(key as Buffer))) throw new Error('private key does not match the certificate');
  } catch (e) { throw new Error(`${files.key}: ${(e as Error).message.includes('does not match') ? 'private key does not match the certificate' : 'not a usable PEM private key'}`, { cause: e }); }
  if (!(ca as Buffer).toString('latin1').includes('-----BEGIN CERTIFICATE-----')) throw new Error(`${files.clientCa}: no PEM certificate in CA bundle`);
  try { new X509Certificate(ca as Buffer); } catch (e) { throw new Error(`${files.clientCa}: not a PEM certificate bundle`, { cause: e }); }
  crls.forEach((c, i) => {
    if (!c.toString('latin1').includes('-----BEGIN X509 CRL-----')) throw new Error(`${files.crl[i]}: not a PEM CRL`);
  });
  // OpenSSL (through Node) reads only the first CRL of a PEM buffer: split
  // bundles so that every CA's CRL in a file is in force, not just the first.
  const crlBlocks = crls.flatMap((c) => c.toString('latin1').match(/-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----/g) ?? []);
  const options: SecureContextOptions = {
    cert, key, ca, minVersion,
    ...(crlBlocks.length > 0 ? { crl: crlBlocks } : {}),
  };
  try {
    // OpenSSL's own acceptance test (also verifies the CRL signatures parse).
    createSecureContext(options);
  } catch (e) {
    throw new Error(`TLS material rejected by OpenSSL: ${(e as Error).message}`, { cause: e });
  }
  const h = createHash('sha256');
  for (const b of [cert, key, ca, ...crls]) h.update(b as Buffer);
  return { options, version: `sha256:${h.digest('hex').slice(0, 16)}`, notAfter: new Date(leaf.validTo) };
}

/** Holds the current material and swaps in validated updates. */
export class TlsMaterialStore {
  readonly #files: TlsFiles;
  readonly #minVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly #log: Logger;
  readonly #status = new StatusTracker('tls');
  readonly #listeners: ((m: LoadedMaterial) => void)[] = [];
  #current: LoadedMaterial;
  #watcher: FileWatcher | undefined;
  #reloading: Promise<boolean> | undefined;

  private constructor(files: TlsFiles, minVersion: 'TLSv1.2' | 'TLSv1.3', log: Logger, initial: LoadedMaterial) {
    this.#files = files;
    this.#minVersion = minVersion;
    this.#log = log;
    this.#current = initial;
    this.#status.loaded(initial.version);
  }

  /** Loads the initial material (throws when broken: start-up fails closed). */
  static async open(cfg: TlsConfig, log: Logger): Promise<TlsMaterialStore> {
    const files = tlsFiles(cfg);
    const store = new TlsMaterialStore(files, cfg.minVersion, log, await loadMaterial(files, cfg.minVersion));
    if (cfg.watch) store.#watcher = watchFiles([files.cert, files.key, files.clientCa, ...files.crl], () => { void store.reload(); });
    return store;
  }

  get current(): LoadedMaterial { return this.#current; }

  onChange(cb: (m: LoadedMaterial) => void): void { this.#listeners.push(cb); }

  /** Re-reads the files; resolves true when new material was swapped in. */
  reload(): Promise<boolean> {
    // Serialize reloads: a burst of file events must not race two loads.
    const run = async (): Promise<boolean> => {
      try {
        const next = await loadMaterial(this.#files, this.#minVersion);
        if (next.version === this.#current.version) return false;
        this.#current = next;
        this.#status.loaded(next.version);
        for (const l of this.#listeners) l(next);
        this.#log.info({ component: 'tls', version: next.version }, 'TLS material reloaded');
        return true;
      } catch (e) {
        this.#status.failed((e as Error).message);
        this.#log.error({ component: 'tls', err: (e as Error).message }, 'TLS material update rejected; previous material stays in use');
        return false;
      }
    };
    const p = (this.#reloading ?? Promise.resolve(false)).then(run);
    this.#reloading = p;
    return p;
  }

  status(): ComponentStatus { return this.#status.snapshot(); }

  close(): void { this.#watcher?.close(); }
}
