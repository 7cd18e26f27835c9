import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_SCHEMA_ID, configJsonSchema, configReferenceMarkdown } from '../../src/config/json-schema.ts';
import { BEGIN_MARKER, END_MARKER, REPO_ROOT, generatedFiles, spliceGenerated } from '../../scripts/gen-schema.ts';

type Obj = { [k: string]: unknown };

function at(schema: unknown, ...path: string[]): Obj {
  let node = schema as Obj;
  for (const p of path) {
    const next = p === '[]' ? node['items'] : (node['properties'] as Obj | undefined)?.[p];
    assert.ok(next && typeof next === 'object', `schema has no ${path.join('.')}`);
    node = next as Obj;
  }
  return node;
}

test('committed generated files match what npm run schema produces', () => {
  for (const f of generatedFiles()) {
    const committed = readFileSync(join(REPO_ROOT, f.path), 'utf8');
    assert.ok(committed === f.content, `${f.path} is stale: run npm run schema`);
  }
});

test('the JSON Schema has an id, a title and draft 2020-12', () => {
  const s = configJsonSchema();
  assert.equal(s['$id'], CONFIG_SCHEMA_ID);
  assert.equal(s['title'], 'meshgate configuration');
  assert.equal(s['$schema'], 'https://json-schema.org/draft/2020-12/schema');
  assert.deepEqual(s['required'], ['upstream', 'tls', 'authz', 'routes', 'audit']);
});

test('durations appear as strings with the duration pattern and their default', () => {
  const s = configJsonSchema();
  for (const [path, def] of [[['listen', 'idleTimeout'], '60s'], [['audit', 'fsyncInterval'], '1s'], [['jwt', 'clockSkew'], '30s'], [['jwt', 'issuers', '[]', 'maxStale'], '1h']] as const) {
    const node = at(s, ...path);
    assert.equal(node['type'], 'string', path.join('.'));
    assert.equal(node['default'], def, path.join('.'));
    const re = new RegExp(String(node['pattern']));
    assert.ok(re.test('250ms') && re.test('5m') && !re.test('5') && !re.test('5 minutes'), path.join('.'));
  }
});

test('defaults, enums and strictness are present for editors', () => {
  const s = configJsonSchema();
  assert.equal(at(s, 'listen', 'port')['default'], 8443);
  assert.equal(at(s, 'admin', 'host')['default'], '127.0.0.1');
  assert.equal(at(s, 'tls', 'mode')['default'], 'strict');
  assert.deepEqual(at(s, 'tls', 'mode')['enum'], ['strict', 'permissive']);
  assert.deepEqual(at(s, 'routes', '[]', 'auth')['enum'], ['none', 'mtls', 'jwt', 'mtls+jwt']);
  assert.equal(s['additionalProperties'], false);
  assert.equal(at(s, 'routes', '[]', 'match')['additionalProperties'], false);
  assert.equal(typeof at(s, 'tls', 'cert')['description'], 'string');
});

test('non-standard zod formats are dropped so strict validators accept the schema', () => {
  const text = JSON.stringify(configJsonSchema());
  assert.doesNotMatch(text, /"format":"starts_with"/);
  assert.match(text, /"format":"uri"/);
  assert.equal(at(configJsonSchema(), 'routes', '[]', 'match', 'pathPrefix')['pattern'], '^\\/.*');
});

test('the key reference documents every leaf key with type and default', () => {
  const md = configReferenceMarkdown();
  assert.match(md, /\| `listen\.idleTimeout` \| duration \| `"60s"` \| keep-alive idle connection timeout \|/);
  assert.match(md, /\| `tls\.mode` \| `strict` \\\| `permissive` \| `"strict"` \|/);
  assert.match(md, /\| `routes\[\]\.auth` \| .* \| \*\*required\*\* \|/);
  assert.match(md, /\| `jwt\.issuers\[\]\.jwksFile` \| string \| — \|/);
  assert.match(md, /### `jwt` \(optional\)/);
  // every row has exactly four cells (unescaped pipes would add some)
  for (const line of md.split('\n').filter((l) => l.startsWith('| `'))) {
    assert.equal(line.replace(/\\\|/g, '').split('|').length, 6, line);
  }
});

test('splicing replaces only the generated block and refuses a doc without markers', () => {
  const doc = `intro\n${BEGIN_MARKER}\nold\n${END_MARKER}\noutro\n`;
  assert.equal(spliceGenerated(doc, 'new\n'), `intro\n${BEGIN_MARKER}\n\nnew\n\n${END_MARKER}\noutro\n`);
  assert.equal(spliceGenerated(spliceGenerated(doc, 'new'), 'new'), spliceGenerated(doc, 'new'));
  assert.throws(() => spliceGenerated('no markers', 'x'), /must contain/);
});
