/**
 * `meshgate` entry point: dispatches to subcommand modules, loaded lazily so
 * that `meshgate token mint` does not pay for the proxy's imports.
 */
import { EXIT_USAGE, UsageError, processIO, type CliIO, type Command } from './command.ts';

const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  run: { summary: 'run the sidecar: meshgate run -c meshgate.yaml', load: async () => (await import('./run.ts')).runCommand },
  demo: { summary: 'start a demo: dev certs, a sample service and meshgate in front of it', load: async () => (await import('./demo.ts')).demoCommand },
  certs: { summary: 'dev PKI: certs init | issue | revoke', load: async () => (await import('./certs.ts')).certsCommand },
  token: { summary: 'dev tokens: token mint', load: async () => (await import('./token.ts')).tokenCommand },
  audit: { summary: 'audit log: audit verify | query | tail', load: async () => (await import('./audit.ts')).auditCommand },
  policy: { summary: 'policy workflow: policy check | test | explain | replay', load: async () => (await import('./policy.ts')).policyCommand },
  analyzer: { summary: 'breach detection: analyzer run | replay', load: async () => (await import('./analyzer.ts')).analyzerCommand },
  alerts: { summary: 'alerts: alerts list | show', load: async () => (await import('./alerts.ts')).alertsCommand },
  decisions: { summary: 'quarantine decisions: decisions list | add | delete', load: async () => (await import('./decisions.ts')).decisionsCommand },
  stream: { summary: 'NATS JetStream scale-out: stream setup | status', load: async () => (await import('./stream.ts')).streamCommand },
  config: { summary: 'configuration: config check | schema', load: async () => (await import('./config.ts')).configCommand },
};

function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const lines = Object.entries(COMMANDS).map(([k, v]) => `  ${k.padEnd(width)}  ${v.summary}`);
  return `meshgate — security sidecar for service meshes

Usage: meshgate <command> [options]

Commands:
${lines.join('\n')}

Run 'meshgate <command> --help' for a command's options.
Exit codes: 0 ok, 1 check/verification failed, 2 usage or configuration error.
`;
}

export async function main(argv: string[], io: CliIO = processIO()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(mainHelp());
    return name === undefined ? EXIT_USAGE : 0;
  }
  if (name === '--version' || name === '-v') {
    const { readFileSync } = await import('node:fs');
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    io.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    io.stderr.write(`meshgate: unknown command '${name}'\n\n${mainHelp()}`);
    return EXIT_USAGE;
  }
  const cmd = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    // Subcommands with their own subcommands (certs issue --help) handle help themselves.
    if (rest[0] === '--help' || rest[0] === '-h' || !/^[a-z]/.test(rest[0] ?? '')) {
      io.stdout.write(cmd.help.endsWith('\n') ? cmd.help : `${cmd.help}\n`);
      return 0;
    }
  }
  try {
    return await cmd.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError || String((err as { code?: unknown }).code ?? '').startsWith('ERR_PARSE_ARGS')) {
      io.stderr.write(`meshgate ${name}: ${(err as Error).message}\nRun 'meshgate ${name} --help' for usage.\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
}
