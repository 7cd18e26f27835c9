/**
 * `npm run schema`: regenerates the files derived from src/config/schema.ts —
 * schema/meshgate.schema.json and the key reference block of
 * docs/configuration.md. test/unit/config-schema.test.ts fails when the
 * committed files differ from what this produces.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configJsonSchema, configReferenceMarkdown } from '../src/config/json-schema.ts';

export const BEGIN_MARKER = '<!-- BEGIN GENERATED: config reference (npm run schema) -->';
export const END_MARKER = '<!-- END GENERATED: config reference -->';

/** Repository root (the folder above scripts/). */
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A generated file: repo-relative path and its full expected content. */
export interface GeneratedFile {
  readonly path: string;
  readonly content: string;
}

/** Replaces the generated block of `doc` with `block`; throws when the markers are missing. */
export function spliceGenerated(doc: string, block: string): string {
  const start = doc.indexOf(BEGIN_MARKER);
  const end = doc.indexOf(END_MARKER);
  if (start < 0 || end < start) throw new Error(`docs/configuration.md must contain ${BEGIN_MARKER} … ${END_MARKER}`);
  return `${doc.slice(0, start + BEGIN_MARKER.length)}\n\n${block.trimEnd()}\n\n${doc.slice(end)}`;
}

/** What every generated file should contain, given the current sources under `root`. */
export function generatedFiles(root: string = REPO_ROOT): GeneratedFile[] {
  const docPath = 'docs/configuration.md';
  const doc = readFileSync(join(root, docPath), 'utf8');
  return [
    { path: 'schema/meshgate.schema.json', content: `${JSON.stringify(configJsonSchema(), null, 2)}\n` },
    { path: docPath, content: spliceGenerated(doc, configReferenceMarkdown()) },
  ];
}

if (import.meta.main) {
  for (const f of generatedFiles()) {
    writeFileSync(join(REPO_ROOT, f.path), f.content);
    process.stdout.write(`wrote ${f.path}\n`);
  }
}
