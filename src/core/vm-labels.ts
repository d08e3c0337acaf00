/**
 * Labels of a VM, from keizoku's element in its domain metadata (namespace urn:keizoku:vm:1,
 * beside the `<kz:address>` elements):
 *
 *   <kz:vm xmlns:kz='urn:keizoku:vm:1'>
 *     <kz:address>10.1.0.20</kz:address>
 *     <kz:label name='season'>tax</kz:label>
 *   </kz:vm>
 *
 * `vms[].match.labels` selects a policy by them.
 */

export type VmLabels = Readonly<Record<string, string>>;

/** One shared empty set, so callers may compare label sets by identity. */
export const NO_LABELS: VmLabels = Object.freeze({});

const LABEL =
  /<(?:[A-Za-z0-9_-]+:)?label\s+name\s*=\s*(["'])([^"'<>]*)\1\s*>([^<]*)<\/(?:[A-Za-z0-9_-]+:)?label\s*>/g;

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function unescapeXml(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|apos|#x[0-9A-Fa-f]+|#[0-9]+);/g, (_, e: string) => {
    if (!e.startsWith('#')) return ENTITIES[e]!;
    const code = e.startsWith('#x') ? Number.parseInt(e.slice(2), 16) : Number.parseInt(e.slice(1), 10);
    return code <= 0x10ffff ? String.fromCodePoint(code) : `&${e};`;
  });
}

/** `<kz:label name="k">v</kz:label>` pairs; a name given twice keeps its first value. */
export function labelsFromMetadata(xml: string | null): VmLabels {
  // A Map, then fromEntries: a label named __proto__ stays a plain own property.
  const labels = new Map<string, string>();
  for (const m of xml?.matchAll(LABEL) ?? []) {
    const key = unescapeXml(m[2]!.trim());
    if (key === '' || key.length > 253 || labels.has(key)) continue;
    labels.set(key, unescapeXml(m[3]!.trim()));
  }
  return labels.size ? Object.fromEntries(labels) : NO_LABELS;
}
