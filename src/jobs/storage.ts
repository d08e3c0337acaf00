import type { LibvirtClient } from '../libvirt/client.ts';
import type { DiskSource } from './domain-requirements.ts';

/**
 * The storage pre-check of a move: for each disk, is it host-local (copied to the destination,
 * or the move refused when copy is off) or shared (never copied, must be seen by the
 * destination)? libvirt's own pools say which:
 * - a file or block device in a host-local pool (dir, fs, logical, disk, zfs) is another file or
 *   LV on every host, even when the same path exists there (an LV left by an earlier copy holds
 *   stale data): it is copied;
 * - one in any other pool (netfs, iscsi, rbd, gluster, mpath, scsi…) is shared: not copied, and
 *   the destination must have a volume at that path;
 * - a type='volume' disk is judged by its pool's type on the source; when shared, the
 *   destination must have the same pool and volume;
 * - a type='network' disk (rbd, iscsi, nbd…) is shared by nature: not copied;
 * - a disk with no source (an empty CD-ROM) or a read-only one is not copied (libvirt copies
 *   neither) and has no check;
 * - a file or block device in NO pool: keizoku cannot tell a local file from one on NFS, nor a
 *   local LV from a SAN LUN. It is copied only when the request asks for a copy (true); with
 *   'auto' (maintenance, drills) the move is refused, naming the disk; with false it is not
 *   copied (the request says it is shared; libvirt's own check of the source then applies).
 * When a copy is made, only the disks to copy are passed (migrate_disks): a shared disk is
 * never mirrored onto itself.
 */

const LOCAL_POOL_TYPES = new Set(['dir', 'fs', 'logical', 'disk', 'zfs']);

export interface StorageCheck {
  check: 'storage';
  ok: boolean;
  detail: string;
  /** The disk's target dev (vda). */
  disk: string;
  /** Copy this disk to the destination (the decision, not its wording, drives the move). */
  copy: boolean;
}

/** Where the source host keeps a disk, as libvirt's pools say. */
export type DiskLocation = { kind: 'pool'; poolType: string } | { kind: 'no-pool' } | { kind: 'network' };

/** What the move needs of libvirt for its storage: nothing, or a copy of the listed disks. */
export function storageCopy(
  req: { copyStorage: boolean | 'auto' },
  checks: readonly { check: string; copy?: boolean; disk?: string }[],
): { copyStorage?: 'all'; migrateDisks?: string[] } {
  if (req.copyStorage === false) return {};
  const disks = checks.filter((c) => c.check === 'storage' && c.copy && c.disk).map((c) => c.disk!);
  return disks.length > 0 ? { copyStorage: 'all', migrateDisks: disks } : {};
}

const nameOf = (d: DiskSource) => (d.type === 'volume' ? `${d.pool}/${d.volume}` : (d.path ?? '?'));

/** The decision for one disk, from where it is and whether the destination sees it. Pure. */
export function decideDisk(
  d: DiskSource,
  where: DiskLocation,
  copyStorage: boolean | 'auto',
  at: { from: string; to: string; visibleOnDest: boolean },
): StorageCheck {
  const disk = d.target ?? '?';
  const what = `${nameOf(d)} (${d.type})`;
  const poolType = where.kind === 'pool' ? where.poolType : null;
  const row = (ok: boolean, copy: boolean, detail: string): StorageCheck => ({
    check: 'storage',
    disk,
    ok,
    copy,
    detail,
  });
  if (where.kind === 'network')
    return row(true, false, `${what}, ${d.protocol ?? 'network'}: shared storage, not copied`);
  if (poolType !== null && !LOCAL_POOL_TYPES.has(poolType))
    return at.visibleOnDest
      ? row(true, false, `${nameOf(d)} (${d.type}, ${poolType} pool) on shared storage seen by ${at.to}`)
      : row(
          false,
          false,
          `${nameOf(d)} (${d.type}, ${poolType} pool) is shared storage but not seen by ${at.to}`,
        );
  const local = poolType !== null;
  const copy = local ? copyStorage !== false : copyStorage === true;
  if (copy && d.target === null)
    return row(false, false, `${what} must be copied but has no <target dev> to name it to libvirt`);
  if (copy)
    return row(
      true,
      true,
      `${nameOf(d)} (${local ? `${poolType}, local to ${at.from}` : 'no pool'}) copied to ${at.to} (storage copy ${copyStorage === 'auto' ? 'needed' : 'requested'})`,
    );
  if (local)
    return row(
      false,
      false,
      `${what} is local to ${at.from} (${poolType} pool): it must be copied; request a storage copy`,
    );
  if (copyStorage === false)
    return row(
      true,
      false,
      `${what} is in no libvirt pool: not copied, as requested (it must be shared storage)`,
    );
  return row(
    false,
    false,
    `${what} is in no libvirt pool on ${at.from}: keizoku cannot tell host-local from shared storage; define a pool for it, or ask for a storage copy (copyStorage true) or for none (false)`,
  );
}

/** Looks each disk up on the source (and, when shared, on the destination) and decides. */
export async function storageChecks(
  req: { from: string; to: string; copyStorage: boolean | 'auto' },
  src: LibvirtClient,
  dst: LibvirtClient,
  disks: readonly DiskSource[],
): Promise<StorageCheck[]> {
  const out: StorageCheck[] = [];
  for (const d of disks) {
    if (d.readonly) continue;
    let where: DiskLocation;
    let visible: () => Promise<boolean>;
    if (d.type === 'network') {
      where = { kind: 'network' };
      visible = async () => true;
    } else if (d.type === 'volume' && d.pool && d.volume) {
      const poolType = await src.storagePoolTypeByName(d.pool);
      where = poolType === null ? { kind: 'no-pool' } : { kind: 'pool', poolType };
      visible = () => dst.hasVolume(d.pool!, d.volume!);
    } else if ((d.type === 'file' || d.type === 'block') && d.path) {
      const poolType = await src.storagePoolTypeOf(d.path);
      where = poolType === null ? { kind: 'no-pool' } : { kind: 'pool', poolType };
      visible = () => dst.hasVolumePath(d.path!);
    } else if (d.type === 'file' || d.type === 'block' || d.type === 'volume') {
      continue; // no source: an empty CD-ROM or floppy
    } else {
      out.push({
        check: 'storage',
        disk: d.target ?? '?',
        ok: false,
        copy: false,
        detail: `disk ${d.target ?? '?'} of type '${d.type}': keizoku cannot judge this storage for a move`,
      });
      continue;
    }
    const shared = where.kind === 'pool' && !LOCAL_POOL_TYPES.has(where.poolType);
    out.push(
      decideDisk(d, where, req.copyStorage, {
        from: req.from,
        to: req.to,
        visibleOnDest: shared ? await visible() : false,
      }),
    );
  }
  return out;
}
