/**
 * Builds the detection engine from a rules file — the one place the live
 * analyzer (embedded worker, `analyzer run`) meets the rule engine, so both
 * run exactly what `analyzer replay` runs.
 */
import { pathToFileURL } from 'node:url';
import { createEngine } from './engine/engine.ts';
import { loadRules } from './rules/load.ts';
import type { DetectionEngine } from './types.ts';

/** Makes an engine from a rules file. */
export type EngineFactory = (rulesFile: string) => Promise<DetectionEngine>;

/** The shipped factory: `loadRules` + `createEngine`. Throws RulesError (every issue listed) for a bad file. */
export async function createEngineFromRules(rulesFile: string): Promise<DetectionEngine> {
  return createEngine(await loadRules(rulesFile));
}

/**
 * The factory exported as `createEngineFromRules` by `moduleRef` (a file path
 * or URL), or the shipped one when undefined. Lets tests run the live
 * analyzer — including the worker thread — with a small fake engine.
 */
export async function loadEngineFactory(moduleRef?: string): Promise<EngineFactory> {
  if (moduleRef === undefined) return createEngineFromRules;
  const url = /^[a-z]+:/.test(moduleRef) ? moduleRef : pathToFileURL(moduleRef).href;
  const mod = (await import(url)) as { createEngineFromRules?: unknown };
  if (typeof mod.createEngineFromRules !== 'function') throw new TypeError(`${moduleRef} does not export createEngineFromRules`);
  return mod.createEngineFromRules as EngineFactory;
}
