/**
 * The one place that turns `audit.sink.nats` into a NATS connection
 * (@nats-io/transport-node): servers, authentication (user/password, token or
 * NKEY seed — read from files when configured so), TLS material, and the
 * reconnect behaviour every meshgate component needs: reconnect forever,
 * also when the first attempt fails (cancellably), because a broker outage
 * must never take a gateway or an analyzer down (the audit log is the spool).
 *
 * Secrets (passwords, tokens, seeds, keys) are read here and handed to the
 * client; they never reach a log line or an error message.
 */
import { readFile } from 'node:fs/promises';
import { connect, nkeyAuthenticator, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import type { NatsSinkConfig } from '../config/schema.ts';
import { silentLogger, type Logger } from '../core/log.ts';

/** The connection part of `audit.sink.nats`. */
export type NatsConnectSettings = Pick<NatsSinkConfig, 'servers' | 'auth' | 'tls'>;

export type { NatsConnection };

async function secret(file: string, what: string): Promise<string> {
  let text: string;
  try {
    text = (await readFile(file, 'utf8')).trim();
  } catch (err) {
    throw new Error(`cannot read NATS ${what} file ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
  if (text === '') throw new Error(`NATS ${what} file ${file} is empty`);
  return text;
}

/** Client options for `settings` (reads the secret and TLS files). */
export async function natsConnectOptions(settings: NatsConnectSettings, name: string): Promise<NodeConnectionOptions> {
  const opts: NodeConnectionOptions = {
    servers: [...settings.servers],
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    // Async stack traces on every request cost more than the publish itself (nats.js README).
    noAsyncTraces: true,
  };
  const a = settings.auth;
  if (a) {
    if ('password' in a) Object.assign(opts, { user: a.user, pass: a.password });
    else if ('passwordFile' in a) Object.assign(opts, { user: a.user, pass: await secret(a.passwordFile, 'password') });
    else if ('token' in a) opts.token = a.token;
    else if ('tokenFile' in a) opts.token = await secret(a.tokenFile, 'token');
    else opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(await secret(a.nkeySeedFile, 'NKEY seed')));
  }
  const t = settings.tls;
  if (t || settings.servers.some((s) => s.startsWith('tls://'))) {
    opts.tls = {
      ...(t?.ca ? { ca: await secret(t.ca, 'TLS CA') } : {}),
      ...(t?.cert ? { cert: await secret(t.cert, 'TLS certificate') } : {}),
      ...(t?.key ? { key: await secret(t.key, 'TLS key') } : {}),
    };
  }
  return opts;
}

/**
 * Connects, retrying the first connection until it succeeds or `signal`
 * aborts (then rejects with the abort reason); after that the client
 * reconnects by itself forever — unless `reconnect: false`, for the shipper,
 * which must never have publishes of a dead connection re-sent on a new one
 * (the client buffers them while reconnecting; see shipper.ts). Connection
 * state changes are logged.
 */
export async function connectNats(settings: NatsConnectSettings, opts: { name: string; log?: Logger; signal?: AbortSignal; reconnect?: boolean }): Promise<NatsConnection> {
  const log = opts.log ?? silentLogger;
  // Read secrets first: a missing seed file is a config error, not an outage to wait out.
  const options = { ...(await natsConnectOptions(settings, opts.name)), waitOnFirstConnect: false, reconnect: opts.reconnect ?? true };
  let backoff = 250;
  let warned = false;
  for (;;) {
    opts.signal?.throwIfAborted();
    try {
      const nc = await connect(options);
      log.info({ server: nc.getServer(), name: opts.name }, 'connected to NATS');
      void (async () => {
        for await (const s of nc.status()) {
          if (s.type === 'disconnect') log.warn({ server: s.server, name: opts.name }, 'NATS connection lost; reconnecting');
          else if (s.type === 'reconnect') log.info({ server: s.server, name: opts.name }, 'NATS connection re-established');
          else if (s.type === 'error') log.error({ err: { message: s.error.message }, name: opts.name }, 'NATS error');
        }
      })().catch(() => {});
      return nc;
    } catch (err) {
      if (!warned) log.warn({ servers: settings.servers, name: opts.name, err: { message: (err as Error).message } }, 'NATS not reachable; retrying');
      warned = true;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, backoff);
        opts.signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
      });
      backoff = Math.min(backoff * 2, 5000);
    }
  }
}
