// The functions a V8 CPU profile (node --cpu-prof, bench:scale's BENCH_CPU_PROF) spent its time
// in: self time (samples whose top frame is the function) and total time (samples with the
// function anywhere on the stack, counted once per sample), by function and source line.
//   node --import tsx bench/profile-top.ts FILE.cpuprofile [N] [--since-ms MS] [--until-ms MS]
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2);
const opt = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args.splice(i, 2)[1]) : null;
};
const sinceMs = opt('--since-ms');
const untilMs = opt('--until-ms');
const [file, n] = args;
if (!file) {
  console.error('usage: profile-top FILE.cpuprofile [N] [--since-ms MS] [--until-ms MS]');
  process.exit(2);
}
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(p.nodes.map((x) => [x.id, x]));
const parent = new Map<number, number>();
for (const x of p.nodes) for (const c of x.children ?? []) parent.set(c, x.id);
const where = (x: ProfileNode) => {
  const f = x.callFrame;
  const url = f.url.replace(/^file:\/\//, '').replace(`${process.cwd()}/`, '');
  return `${f.functionName || '(anonymous)'} ${url}${url ? `:${f.lineNumber + 1}` : ''}`;
};

const self = new Map<string, number>();
const total = new Map<string, number>();
let t = 0;
let sampled = 0;
for (let i = 0; i < p.samples.length; i++) {
  t += p.timeDeltas[i] ?? 0;
  const at = t / 1000;
  if ((sinceMs !== null && at < sinceMs) || (untilMs !== null && at > untilMs)) continue;
  const dt = (p.timeDeltas[i + 1] ?? 0) / 1000; // the time until the next sample
  sampled += dt;
  let id: number | undefined = p.samples[i]!;
  const top = where(byId.get(id)!);
  self.set(top, (self.get(top) ?? 0) + dt);
  const seen = new Set<string>();
  while (id !== undefined) {
    const k = where(byId.get(id)!);
    if (!seen.has(k)) {
      seen.add(k);
      total.set(k, (total.get(k) ?? 0) + dt);
    }
    id = parent.get(id);
  }
}
const top = (m: Map<string, number>) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, Number(n ?? 30))
    .map(
      ([k, ms]) => `${ms.toFixed(0).padStart(8)} ms ${((ms / sampled) * 100).toFixed(1).padStart(5)} %  ${k}`,
    )
    .join('\n');
console.log(
  `profile ${((p.endTime - p.startTime) / 1e6).toFixed(1)} s, ${(sampled / 1000).toFixed(1)} s counted`,
);
console.log(`\nself time\n${top(self)}\n\ntotal time\n${top(total)}`);
