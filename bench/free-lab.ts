import { LabError, listLabIds, upLab } from '../lab/index.ts';

/** Brings a lab up on the first free id of 10-49 (owner "bench"); returns its id. */
export async function upFreeLab(shape: {
  hosts: number;
  sites: number;
  wanRateMbit?: number;
}): Promise<number> {
  for (let id = 10; id <= 49; id++) {
    if (listLabIds().includes(id)) continue;
    try {
      await upLab({ id, ...shape, owner: 'bench' });
      return id;
    } catch (e) {
      if (!(e instanceof LabError && e.message.includes('already up'))) throw e;
    }
  }
  throw new Error('no free lab id');
}
