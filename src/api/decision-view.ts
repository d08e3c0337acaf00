import { type Action, actionVm, type CandidateHost, type DecisionRecord } from '../core/plan.ts';
import { inScope, type Principal } from './auth/rbac.ts';

/**
 * What a principal may see of a stored decision, with its jobs' outcomes joined in. Pure: the
 * caller reads the record and the jobs. Admins, operators and viewers see all of it. A
 * vm-admin sees a decision only if one of its VMs is in it, and then only its VMs' parts:
 * other VMs' candidates, actions, refusals and jobs are left out, and any other VM's name in
 * a sentence (an anti-affinity filter names the VMs already on a host) is replaced, so that
 * nothing in the view names a VM outside its scope.
 */

/** What a job looked like when the decision was read (structural: any job kind fits). */
export interface JobFacts {
  state: string;
  result: {
    outcome: string;
    reason: string | null;
    finishedAt: number;
    /** Migrations only. */
    probe?: { outageMs: number }[];
  } | null;
}

export interface DecisionJobView {
  id: string;
  vm: string | null;
  kind: string;
  /** The job's state, or `gone` when the job system no longer keeps it. */
  state: string;
  outcome: string | null;
  reason: string | null;
  finishedAt: number | null;
  /** The longest outage a probe saw during the move (ms); null when no probe watched it. */
  outageMs: number | null;
}

export interface FilterVerdictView {
  plugin: string;
  code: string;
  reason: string;
  /** Set when the sentence named a VM the reader may not see, now replaced. */
  redacted?: true;
}

export interface CandidateView extends Omit<CandidateHost, 'rejectedBy'> {
  rejectedBy: FilterVerdictView[];
}

export interface DecisionView {
  id: string;
  planner: string;
  at: number;
  reason: string;
  ref: string;
  requestedBy: { id: string; name: string };
  vms: string[];
  candidates: Record<string, CandidateView[]>;
  actions: Action[];
  ok: boolean;
  refused: { vm: string; reasons: string[] }[];
  jobs: DecisionJobView[];
  /** True when parts about VMs outside the reader's scope were left out or redacted. */
  partial: boolean;
}

/** What replaces the name of a VM the reader may not see. */
export const HIDDEN_VM = '(another VM)';

/** Every VM a decision mentions in its structure. */
export function vmsOf(d: DecisionRecord): Set<string> {
  const out = new Set<string>(d.vms);
  for (const vm of Object.keys(d.candidates)) out.add(vm);
  for (const a of d.actions) {
    const vm = actionVm(a);
    if (vm !== null) out.add(vm);
  }
  for (const r of d.refused) out.add(r.vm);
  for (const j of d.jobs) if (j.vm !== null) out.add(j.vm);
  return out;
}

const NAME_CHAR = 'A-Za-z0-9._-';
const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Replaces whole-name occurrences of `names` in sentences (longest first: `db1.x` before `db1`). */
function redactor(names: Iterable<string>): (s: string) => string {
  const list = [...new Set(names)].filter((n) => n.length > 0).sort((a, b) => b.length - a.length);
  if (list.length === 0) return (s) => s;
  // A name ends where a name character does not follow, except a sentence's full stop.
  const re = new RegExp(
    `(?<![${NAME_CHAR}])(?:${list.map(escapeRegExp).join('|')})(?![A-Za-z0-9_-]|\\.[${NAME_CHAR}])`,
    'g',
  );
  return (s) => s.replace(re, HIDDEN_VM);
}

/**
 * A sentence as `p` may read it: for a vm-admin, every VM of `knownVms` outside its scope is
 * replaced by HIDDEN_VM (refusals quote filter verdicts, and the anti-affinity one names the
 * VMs already on a host). Others read it as it is.
 */
export function sentenceFor(p: Principal, knownVms: Iterable<string>): (s: string) => string {
  if (p.role !== 'vm-admin') return (s) => s;
  return redactor([...knownVms].filter((vm) => !inScope(p, vm)));
}

function outageOf(j: JobFacts): number | null {
  const probes = j.result?.probe ?? [];
  return probes.length === 0 ? null : Math.max(...probes.map((p) => p.outageMs));
}

/**
 * The principal's view of `d`, or null when it may not know the decision exists.
 * `knownVms` are the other VM names to look for in sentences (the cluster's VMs); the
 * decision's own VMs are always looked for. `jobs` holds what each job id looked up gave
 * (null or absent: gone).
 */
export function decisionView(
  d: DecisionRecord,
  p: Principal,
  knownVms: Iterable<string>,
  jobs: ReadonlyMap<string, JobFacts | null>,
): DecisionView | null {
  const mentioned = vmsOf(d);
  const visible = (vm: string | null) => vm !== null && inScope(p, vm);
  const scoped = p.role === 'vm-admin';
  if (scoped && ![...mentioned].some(visible)) return null;
  const hidden = scoped ? [...new Set([...mentioned, ...knownVms])].filter((vm) => !visible(vm)) : [];
  const redact = redactor(hidden);
  let partial = scoped && [...mentioned].some((vm) => !visible(vm));
  const say = (s: string) => {
    const r = redact(s);
    if (r !== s) partial = true;
    return r;
  };
  const keepVm = (vm: string | null) => !scoped || visible(vm);

  const candidates: Record<string, CandidateView[]> = {};
  for (const [vm, hosts] of Object.entries(d.candidates)) {
    if (!keepVm(vm)) continue;
    candidates[vm] = hosts.map((h) => ({
      ...h,
      rejectedBy: h.rejectedBy.map((f) => {
        const reason = say(f.reason);
        return reason === f.reason ? { ...f } : { ...f, reason, redacted: true as const };
      }),
    }));
  }
  const view: DecisionView = {
    id: d.id,
    planner: d.planner,
    at: d.at,
    reason: say(d.reason),
    ref: say(d.ref),
    requestedBy: { ...d.requestedBy },
    vms: d.vms.filter(keepVm),
    candidates,
    // Host-level actions (fence) are not a VM administrator's to see.
    actions: d.actions.filter((a) => keepVm(actionVm(a))).map((a) => ({ ...a })),
    ok: d.ok,
    refused: d.refused.filter((r) => keepVm(r.vm)).map((r) => ({ vm: r.vm, reasons: r.reasons.map(say) })),
    jobs: d.jobs
      .filter((j) => keepVm(j.vm))
      .map((j) => {
        const found = jobs.get(j.id) ?? null;
        return {
          id: j.id,
          vm: j.vm,
          kind: j.kind,
          state: found ? found.state : 'gone',
          outcome: found?.result?.outcome ?? null,
          reason: found?.result?.reason == null ? null : say(found.result.reason),
          finishedAt: found?.result?.finishedAt ?? null,
          outageMs: found ? outageOf(found) : null,
        };
      }),
    partial: false,
  };
  // Read last: every sentence above has been through `say` by now.
  view.partial = partial;
  return view;
}
