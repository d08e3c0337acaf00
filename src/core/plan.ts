// Decisions: what a planner decided, why, and the typed actions that carry it out. Planners
// are pure functions of a cluster snapshot that return decisions; the executor (jobs/) runs
// each action as a job under its VM's lock; the decision store keeps them so that "why did
// this VM move, and why there" is one lookup.
import type { ReplicaTarget } from './replication.ts';

/** Who decided. */
export type PlannerName = 'operator' | 'evacuate' | 'drs' | 'failover' | 'schedule' | 'drill' | 'site';

/** A filter's verdict on one candidate host (stable code, plus the sentence for people). */
export interface FilterVerdict {
  /** The filter plugin's name, e.g. `capacity-memory`. */
  plugin: string;
  /** Stable reason code, e.g. `InsufficientMemory`; the API and tests match on this. */
  code: string;
  reason: string;
}

/** One candidate host as a planner judged it. */
export interface CandidateHost {
  host: string;
  feasible: boolean;
  /** Every filter that rejected the host (empty when feasible). */
  rejectedBy: FilterVerdict[];
  /** Normalised score 0..1 per scorer (only when feasible), and their weighted sum. */
  scores: Record<string, number>;
  score: number;
}

export type Action =
  | {
      kind: 'migrate';
      vm: string;
      from: string;
      to: string;
      copyStorage: boolean | 'auto';
      /** Per-request overrides of the configured migration policy. */
      policy?: Record<string, unknown>;
    }
  | { kind: 'start'; vm: string; host: string }
  | { kind: 'shutdown'; vm: string; host: string }
  | { kind: 'destroy'; vm: string; host: string }
  | { kind: 'define'; vm: string; host: string }
  | { kind: 'undefine'; vm: string; host: string }
  /** Start the VM on `to` from its stored definition once `from` is known not to run it. */
  | { kind: 'restart-elsewhere'; vm: string; from: string; to: string }
  /**
   * Raise the VM's CPU cap (per vCPU, % of one physical CPU) within its limits profile's burst
   * allowance, for `holdMs` from when it runs (DRS renews it while the burst lasts; the limits
   * loop puts the profile's cap back once it lapses).
   */
  | {
      kind: 'raise-cpu-cap';
      vm: string;
      host: string;
      quotaPercent: number;
      periodUs: number;
      holdMs: number;
    }
  /** Mirror a local disk into its replica on a recovery-site host with synchronous writes (class ア). */
  | { kind: 'start-mirror'; vm: string; host: string; target: ReplicaTarget }
  /** Start the VM on `to` from its replicas there once `from` is known not to run it. */
  | { kind: 'restart-from-replica'; vm: string; from: string; to: string; replicas: ReplicaTarget[] }
  | { kind: 'fence'; host: string };

export type ActionKind = Action['kind'];

/** The VM an action acts on (null for host-level actions such as fence). */
export const actionVm = (a: Action): string | null => (a.kind === 'fence' ? null : a.vm);

export interface Decision {
  /** `dec-<uuid>`, given by the caller (planners stay deterministic). */
  id: string;
  planner: PlannerName;
  /** When it was decided (ms since the epoch, from the snapshot or the caller). */
  at: number;
  /** One sentence: why this decision was made (e.g. "host h1 enters maintenance"). */
  reason: string;
  /** What asked for it: `api`, `maintenance:h1`, `schedule:night`, `drill:<id>`. */
  ref: string;
  /** Who asked, when a person did (token id and name); the controller otherwise. */
  requestedBy: { id: string; name: string };
  /** The VMs the decision is about (for the per-VM index and a vm-admin's view). */
  vms: string[];
  /** Per VM, every host considered with its filter verdicts and scores. */
  candidates: Record<string, CandidateHost[]>;
  actions: Action[];
  /** When the planner could not do it all: per VM, why (nothing is submitted when not ok). */
  ok: boolean;
  refused: { vm: string; reasons: string[] }[];
}

/** A decision as stored: the jobs that carry it out, filled in when it is submitted. */
export interface DecisionRecord extends Decision {
  jobs: { id: string; vm: string | null; kind: ActionKind }[];
}
