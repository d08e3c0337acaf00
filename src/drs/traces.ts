import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Trace } from '../core/drs/simulate.ts';

// Utilisation traces for `drs simulate`: the PlanetLab format (a directory, one file per VM,
// one CPU percentage per line) and a CSV (time s, vm, cpu %, memory MiB). Bad input is an
// error naming the file and line.

export class TraceError extends Error {
  override name = 'TraceError';
}

export function readPlanetLab(dir: string, intervalMs = 300_000): Trace {
  const vms: Trace['vms'] = [];
  for (const name of readdirSync(dir).sort()) {
    const file = join(dir, name);
    if (!statSync(file).isFile() || name.endsWith('.md')) continue;
    const cpu: number[] = [];
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        const t = line.trim();
        if (t === '') return;
        const pct = Number(t);
        if (!Number.isFinite(pct) || pct < 0 || pct > 100)
          throw new TraceError(`${file}:${i + 1}: expected a CPU percentage 0-100, got "${t}"`);
        cpu.push(pct / 100);
      });
    if (cpu.length > 0) vms.push({ name, cpu });
  }
  if (vms.length === 0) throw new TraceError(`${dir}: no VM files with CPU samples`);
  return { intervalMs, vms };
}

export function readCsv(file: string): Trace {
  const rows = readFileSync(file, 'utf8').split('\n');
  const byVm = new Map<string, { at: number; cpu: number; mem: number }[]>();
  rows.forEach((line, i) => {
    const t = line.trim();
    if (t === '' || (i === 0 && /^[a-z_]/i.test(t))) return;
    const [time, vm, cpu, mem] = t.split(',').map((s) => s.trim());
    const at = Number(time);
    const pct = Number(cpu);
    const mib = Number(mem);
    if (!vm || !Number.isFinite(at) || !Number.isFinite(pct) || pct < 0 || pct > 100 || !(mib > 0))
      throw new TraceError(`${file}:${i + 1}: expected "time s, vm, cpu % 0-100, memory MiB", got "${t}"`);
    if (!byVm.has(vm)) byVm.set(vm, []);
    byVm.get(vm)!.push({ at, cpu: pct / 100, mem: mib });
  });
  if (byVm.size === 0) throw new TraceError(`${file}: no samples`);
  const times = [...new Set([...byVm.values()].flatMap((s) => s.map((x) => x.at)))].sort((a, b) => a - b);
  if (times.length < 2) throw new TraceError(`${file}: at least two sample times are needed`);
  const intervalMs = (times[1]! - times[0]!) * 1000;
  const index = new Map(times.map((t, i) => [t, i]));
  const vms: Trace['vms'] = [];
  for (const [name, samples] of [...byVm].sort((a, b) => a[0].localeCompare(b[0]))) {
    const cpu = new Array<number>(times.length).fill(0);
    for (const s of samples) cpu[index.get(s.at)!] = s.cpu;
    vms.push({ name, cpu, memoryMiB: Math.max(...samples.map((s) => s.mem)) });
  }
  return { intervalMs, vms };
}

/** A directory is read as PlanetLab, a file as CSV. */
export const readTrace = (path: string): Trace =>
  statSync(path).isDirectory() ? readPlanetLab(path) : readCsv(path);
