import type { Command } from 'commander';
import { CliError, EXIT } from '../client.ts';
import { clientFrom, enc, jsonFlag } from '../context.ts';
import { emit, table } from '../output.ts';

/** `keizoku vm why VM`: the decisions that touched a VM, as `GET /v1/vms/{name}/decisions` gives them. */

interface Verdict {
  plugin: string;
  code: string;
  reason: string;
  redacted?: boolean;
}
interface Candidate {
  host: string;
  feasible: boolean;
  rejectedBy: Verdict[];
  scores: Record<string, number>;
  score: number;
}
interface Action {
  kind: string;
  vm?: string;
  host?: string;
  from?: string;
  to?: string;
}
interface DecisionJob {
  id: string;
  vm: string | null;
  kind: string;
  state: string;
  outcome: string | null;
  reason: string | null;
  outageMs: number | null;
}
export interface DecisionView {
  id: string;
  planner: string;
  at: number;
  reason: string;
  ref: string;
  requestedBy: { id: string; name: string };
  vms: string[];
  candidates: Record<string, Candidate[]>;
  actions: Action[];
  ok: boolean;
  refused: { vm: string; reasons: string[] }[];
  jobs: DecisionJob[];
  partial: boolean;
}

const indent = (text: string, by: string) =>
  text
    .split('\n')
    .map((l) => (l ? `${by}${l}` : l))
    .join('\n');

const where = (a: Action) =>
  a.from !== undefined && a.to !== undefined ? `${a.from} -> ${a.to}` : (a.host ?? '');

const landsOn = (a: Action) => a.to ?? (a.kind === 'start' ? a.host : undefined);

function candidateRows(vm: string, hosts: Candidate[], actions: Action[]): string[][] {
  const chosen = new Set(actions.filter((a) => a.vm === vm).map(landsOn));
  const ordered = [...hosts].sort(
    (a, b) => Number(b.feasible) - Number(a.feasible) || b.score - a.score || a.host.localeCompare(b.host),
  );
  return ordered.map((h) => {
    if (!h.feasible)
      return [
        h.host,
        'rejected',
        '-',
        h.rejectedBy.map((f) => `${f.code}: ${f.reason}${f.redacted ? ' (redacted)' : ''}`).join('; '),
      ];
    const scores = Object.entries(h.scores)
      .map(([k, v]) => `${k} ${v.toFixed(2)}`)
      .join(', ');
    return [h.host, chosen.has(h.host) ? 'chosen' : 'feasible', h.score.toFixed(2), scores];
  });
}

function jobOf(d: DecisionView, a: Action): DecisionJob | undefined {
  return d.jobs.find((j) => j.vm === (a.vm ?? null) && j.kind === a.kind);
}

/** One decision as text: when, who decided and why, every host considered, what was done. */
export function formatDecision(d: DecisionView): string {
  const out: string[] = [];
  const who =
    d.requestedBy.id === 'controller' ? 'the controller' : `${d.requestedBy.name} (${d.requestedBy.id})`;
  out.push(`${d.id}  ${new Date(d.at).toISOString()}  ${d.planner}${d.ok ? '' : '  (refused)'}`);
  out.push(`  why:    ${d.reason}`);
  out.push(`  ref:    ${d.ref}, asked by ${who}`);
  for (const [vm, hosts] of Object.entries(d.candidates)) {
    out.push(`  hosts considered for ${vm}:`);
    out.push(
      indent(
        table(['HOST', 'VERDICT', 'SCORE', 'FILTER OR SCORES'], candidateRows(vm, hosts, d.actions)),
        '    ',
      ).trimEnd(),
    );
  }
  if (d.actions.length > 0) {
    out.push('  actions:');
    const rows = d.actions.map((a) => {
      const j = jobOf(d, a);
      return [
        a.kind,
        a.vm ?? '',
        where(a),
        j?.id ?? 'no job',
        j ? (j.state === 'gone' ? 'gone (no longer kept)' : (j.outcome ?? j.state)) : '',
        j?.outageMs ?? '',
        j?.reason ?? '',
      ];
    });
    out.push(
      indent(
        table(['ACTION', 'VM', 'WHERE', 'JOB', 'OUTCOME', 'OUTAGE ms', 'DETAIL'], rows),
        '    ',
      ).trimEnd(),
    );
  } else {
    out.push('  actions: none');
  }
  for (const r of d.refused) out.push(`  refused ${r.vm}: ${r.reasons.join('; ')}`);
  if (d.partial) out.push('  (parts about VMs outside your scope are not shown)');
  return `${out.join('\n')}\n`;
}

export function formatWhy(vm: string, decisions: DecisionView[]): string {
  if (decisions.length === 0) return `${vm}: no decisions recorded\n`;
  return decisions.map(formatDecision).join('\n');
}

export function whyCommand(vm: Command): void {
  vm.command('why <vm>')
    .description('why the VM moved, and why there: its last decisions with hosts, scores and jobs')
    .option('--limit <n>', 'at most this many decisions, newest first (1-50)', '5')
    .action(async (name: string, o: { limit: string }, cmd: Command) => {
      const limit = Number(o.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 50)
        throw new CliError(`--limit "${o.limit}": expected a whole number from 1 to 50`, EXIT.usage);
      const r = await clientFrom(cmd).call<{ vm: string; decisions: DecisionView[] }>(
        'GET',
        `/v1/vms/${enc(name)}/decisions?limit=${limit}`,
      );
      emit({ json: jsonFlag(cmd) }, r, () => formatWhy(r.vm, r.decisions));
    });
}
