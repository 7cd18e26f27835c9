#!/usr/bin/env node
// Launcher. meshgate runs its TypeScript sources directly on Node >= 22.18
// (type stripping). On an older Node — e.g. a machine whose system Node is 20 —
// it re-executes itself with the Node 24 binary installed by the `node`
// devDependency, so `meshgate` works the same inside and outside npm scripts.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const [major, minor] = process.versions.node.split('.').map(Number);
const supported = major > 22 || (major === 22 && minor >= 18);
if (!supported) {
  const local = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url));
  if (process.env.MESHGATE_REEXEC !== '1' && existsSync(local)) {
    const r = spawnSync(local, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
      stdio: 'inherit',
      env: { ...process.env, MESHGATE_REEXEC: '1' },
    });
    process.exit(r.status ?? 1);
  }
  process.stderr.write(`meshgate needs Node.js >= 22.18 (this is ${process.version}); run 'npm ci' to install Node 24 locally.\n`);
  process.exit(2);
}
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
