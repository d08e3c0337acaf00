import type { ReplicaTarget } from '../core/replication.ts';
import type { LibvirtClient } from '../libvirt/client.ts';
import { type ExportRequest, type NbdExport, nbdDiskXml } from './nbd-export.ts';

/** Starts and stops the NBD exports of replicas on recovery hosts (SshNbdExports on real hosts). */
export interface ReplicaExports {
  ensure(managementAddress: string, e: ExportRequest): Promise<void>;
  release(managementAddress: string, e: NbdExport): Promise<void>;
}

export type Outcome = ['succeeded' | 'failed' | 'refused', string | null];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Mirrors one disk of a running VM into its replica: the export on the recovery host first
 * (idempotent), then the block copy with synchronous writes, then waits until the copy is
 * ready (the first full pass is done and every later write reaches the replica before the
 * guest sees it complete). A disk already mirroring is left as it is; a disk with another
 * block job is refused. Never pivots.
 */
export async function startMirror(
  c: LibvirtClient,
  vm: string,
  t: ReplicaTarget,
  exports: ReplicaExports,
  readyTimeoutMs: number,
): Promise<Outcome> {
  const dom = await c.lookupByName(vm);
  const st = await c.getState(dom);
  if (st.state !== 'running') return ['refused', `${vm} is ${st.state}, not running`];
  const job = await c.blockJobInfo(dom, t.disk);
  if (job && job.type !== 'copy') return ['refused', `${vm}'s ${t.disk} has a ${job.type} block job`];
  if (job && !mirrorsTo(await c.getXml(dom), t))
    return ['refused', `${vm}'s ${t.disk} is copied elsewhere than ${t.address}:${t.port}/${t.name}`];
  if (!job) {
    await exports.ensure(t.address, t);
    await c.blockCopy(dom, t.disk, nbdDiskXml(t), {
      synchronousWrites: true,
      reuseExternal: true,
      transientJob: true,
    });
  }
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    const now = await c.blockJobInfo(dom, t.disk);
    if (!now) return ['failed', `${vm}'s copy of ${t.disk} to ${t.host} ended before it was ready`];
    if (mirrorReady(await c.getXml(dom), t.disk))
      return ['succeeded', job ? `${t.disk} was already mirroring to ${t.host}` : null];
    if (Date.now() > deadline)
      return [
        'failed',
        `${vm}'s copy of ${t.disk} to ${t.host} not ready after ${readyTimeoutMs} ms (${now.cur} of ${now.end} bytes)`,
      ];
    await sleep(200);
  }
}

/**
 * Whether the disk's block copy is ready (libvirt marks the live XML's mirror `ready='yes'` at
 * QEMU's ready event and keeps it until the job ends): every write now reaches the copy too.
 */
export function mirrorReady(xml: string, disk: string): boolean {
  const block = diskBlocks(xml).find((b) => targetDev(b) === disk);
  const mirror = block?.match(/<mirror\b[^>]*>/)?.[0] ?? '';
  return /\bready='yes'/.test(mirror);
}

/** Whether the live XML's mirror of the disk goes to this export. */
function mirrorsTo(xml: string, t: ReplicaTarget): boolean {
  const disk = diskBlocks(xml).find((b) => targetDev(b) === t.disk);
  const mirror = disk?.match(/<mirror[\s\S]*?<\/mirror>/)?.[0] ?? '';
  return (
    mirror.includes(`protocol='nbd' name='${t.name}'`) &&
    mirror.includes(`<host name='${t.address}' port='${t.port}'/>`)
  );
}

const diskBlocks = (xml: string): string[] => xml.match(/<disk\b[\s\S]*?<\/disk>/g) ?? [];
const targetDev = (block: string): string | null => block.match(/<target\b[^>]*\bdev='([^']+)'/)?.[1] ?? null;

/**
 * The VM's definition with each replicated disk pointing at its replica file (qcow2), for the
 * restart at the recovery site. A replicated disk missing from the definition is an error: the
 * VM would start without the data its replica holds.
 */
export function replicaDomainXml(
  xml: string,
  replicas: readonly Pick<ReplicaTarget, 'disk' | 'path'>[],
): string {
  let out = xml;
  for (const r of replicas) {
    const block = diskBlocks(out).find((b) => targetDev(b) === r.disk);
    if (!block) throw new Error(`the definition has no disk ${r.disk} to point at its replica ${r.path}`);
    const changed = block
      .replace(/<source\b[^>]*?(\/>|>[\s\S]*?<\/source>)/, `<source file='${r.path}'/>`)
      .replace(/<disk\b([^>]*)\btype='[^']*'/, "<disk$1type='file'")
      .replace(/(<driver\b[^>]*\btype=')[^']*'/, "$1qcow2'");
    out = out.replace(block, changed);
  }
  return out;
}

/** Stops the exports of a VM's replicas (their files stay), so the restarted VM may open them. */
export async function releaseReplicas(
  exports: ReplicaExports,
  replicas: readonly ReplicaTarget[],
): Promise<void> {
  for (const r of replicas) await exports.release(r.address, r);
}
