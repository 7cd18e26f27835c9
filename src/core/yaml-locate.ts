/**
 * Where a value lives in a YAML source, so that config and rules errors can
 * say `file:line:col` (shared by src/config/load.ts and the detection rules
 * loader).
 */
import { isAlias, isMap, isScalar, isSeq, type Document, type Node } from 'yaml';

export type YamlPath = readonly PropertyKey[];

/** Source offset of the node at `path` (of its key when `key`), else of its deepest existing ancestor. */
export function locateYaml(doc: Document, path: YamlPath, key: boolean): number | undefined {
  let node: unknown = doc.contents;
  let offset = (node as Node | null)?.range?.[0];
  for (let i = 0; i < path.length; i++) {
    if (isAlias(node)) node = node.resolve(doc);
    const seg = path[i];
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      const keyStart = (pair.key as Node).range?.[0];
      node = pair.value;
      offset = key && i === path.length - 1 ? keyStart : ((node as Node | null)?.range?.[0] ?? keyStart);
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
      offset = (node as Node | undefined)?.range?.[0] ?? offset;
    } else break;
  }
  return offset;
}
