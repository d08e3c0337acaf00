import {
  applyAnswer,
  applyJob,
  applyStep,
  applySubmitted,
  awaitingReply,
  DEFAULT_TIMELINE_CONFIG,
  type FailoverProbe,
  type FailoverRecord,
  firstReply,
  type StepChange,
  settle,
  type TimelineConfig,
} from '../core/ha/timeline.ts';
import type { ClusterSnapshot } from '../core/model.ts';
import type { ProbeWindow } from '../jobs/migrate.ts';
import type { JobSystem } from '../jobs/queue.ts';
import type { Metrics } from '../metrics/registry.ts';
import type { FailoverStore } from '../store/failovers.ts';
import type { FenceRecord } from '../store/fences.ts';

/**
 * The I/O around the failover records (core/ha/timeline.ts) for the ha loop: after each step
 * of the state machine it folds in the step, the restart jobs' times and the probe's first
 * replies, then writes the records that changed (store/failovers.ts). The open records live
 * in the ha loop's saved state, so a new leader continues them. Probe agents are asked in the
 * background (a slow agent never holds a pass); their answer is folded in at the next pass.
 */

export interface FailoverTimelineOptions {
  store: Pick<FailoverStore, 'put'>;
  jobs: Pick<JobSystem, 'get'>;
  /** The probe agents' window of a VM (daemon/probe-window.ts probeWindows). */
  probeWindow(vm: string, fromMs: number, toMs: number): Promise<ProbeWindow[]>;
  fenceRecordOf(host: string): FenceRecord | null;
  /** The last ICMP reply from the host's management address (null: none, or not probed). */
  lastIcmpReplyAt?(host: string): number | null;
  fenceMethodOf(host: string): string;
  tierOf(vm: string): string | null;
  haPriorityOf(vm: string): number | null;
  /** The leader's fencing check before a write (LeaderLease.fence). */
  fenceCheck: () => Promise<void>;
  metrics?: Pick<Metrics, 'failoverRto'>;
  log: { warn(o: object, msg: string): void };
  /** Called when a probe answer (or the absence of any probe watching a VM) is found: the
   *  priority gate opens at the next pass, so the loop asks for one at once. */
  wake?: () => void;
  config?: Partial<TimelineConfig>;
}

const UNWATCHED_AFTER = 3;

type Outage = { startMs: number; endMs: number; durationMs: number; lost: number; open: boolean };

export class FailoverTimeline {
  private readonly cfg: TimelineConfig;
  /** Replies found by the background probe queries, by `${record}/${vm}`. */
  private readonly answers = new Map<string, FailoverProbe>();
  private readonly asking = new Set<string>();
  /**
   * Consecutive queries of `${record}/${vm}` that no live agent answered for: at
   * UNWATCHED_AFTER, no probe watches the VM and the priority gate waits for nothing of it
   * (one empty reply may be a slow agent).
   */
  private readonly emptyReplies = new Map<string, number>();
  /** What was last written per record id (only changes are written again). */
  private readonly written = new Map<string, string>();

  constructor(private readonly o: FailoverTimelineOptions) {
    this.cfg = { ...DEFAULT_TIMELINE_CONFIG, ...o.config };
  }

  /** The open records after a step; every record the step touched, closed ones too. */
  async step(
    open: readonly FailoverRecord[],
    change: StepChange,
    snap: ClusterSnapshot,
    now: number,
  ): Promise<FailoverRecord[]> {
    let records = applyStep(
      open,
      change,
      now,
      {
        // Its last successful libvirt read, or its last ICMP reply when later (every
        // loops.healthIntervalMs, where reads come every loops.inventoryIntervalMs).
        lastSeenUpAt: (h) => {
          const age = snap.hosts.get(h)?.evidence?.lastCallAgeMs;
          const seen = [age == null ? null : snap.takenAt - age, this.o.lastIcmpReplyAt?.(h) ?? null];
          const known = seen.filter((t): t is number => t !== null);
          return known.length > 0 ? Math.max(...known) : null;
        },
        fenceMethod: (h) => this.o.fenceMethodOf(h),
        fenceRecord: (h) => this.o.fenceRecordOf(h),
        vmInfo: (vm) => ({ tier: this.o.tierOf(vm), priority: this.o.haPriorityOf(vm) }),
      },
      this.cfg,
    );
    records = await Promise.all(records.map((r) => this.jobTimes(r)));
    return records.map((r) => settle(this.replies(r, now), now, this.cfg));
  }

  submitted(
    records: readonly FailoverRecord[],
    decision: { id: string; reason: string },
    jobs: readonly { vm: string; from: string; to: string; id: string }[],
    at: number,
  ): FailoverRecord[] {
    return applySubmitted(
      records,
      jobs.map((j) => ({ vm: j.vm, from: j.from, to: j.to, job: j.id })),
      decision,
      at,
      this.cfg,
    );
  }

  /**
   * The VMs of these records seen answering the probe (folded in, or found since the last step),
   * or that no probe agent watches: the failover's priority gate waits for nothing more of them.
   */
  answeredVms(records: readonly FailoverRecord[]): string[] {
    const out = new Set<string>();
    for (const r of records)
      for (const v of r.vms) {
        const key = `${r.id}/${v.vm}`;
        if (
          v.status === 'answering' ||
          v.status === 'not-answering' ||
          this.answers.has(key) ||
          (this.emptyReplies.get(key) ?? 0) >= UNWATCHED_AFTER
        )
          out.add(v.vm);
      }
    return [...out].sort();
  }

  /** Writes the records that changed since they were last written. */
  async flush(records: readonly FailoverRecord[]): Promise<void> {
    const changed = records.filter((r) => this.written.get(r.id) !== JSON.stringify(r));
    if (changed.length === 0) return;
    try {
      await this.o.fenceCheck();
      await this.o.store.put(changed);
      for (const r of changed) {
        if (r.status === 'open') this.written.set(r.id, JSON.stringify(r));
        else {
          this.written.delete(r.id);
          for (const k of this.emptyReplies.keys()) if (k.startsWith(`${r.id}/`)) this.emptyReplies.delete(k);
        }
      }
    } catch (e) {
      this.o.log.warn({ err: (e as Error).message }, 'failover records not written');
    }
  }

  /** Start and end of each restart job not yet known, from the job's result. */
  private async jobTimes(rec: FailoverRecord): Promise<FailoverRecord> {
    let r = rec;
    for (const v of rec.vms) {
      if (!v.job || v.endedAt !== null) continue;
      const view = await this.o.jobs.get(v.job).catch(() => null);
      const res = view?.result as { startedAt?: number; finishedAt?: number } | null | undefined;
      if (!view || view.state === 'waiting' || view.state === 'active' || !res) continue;
      r = applyJob(
        r,
        v.vm,
        v.job,
        { startedAt: res.startedAt ?? null, endedAt: res.finishedAt ?? null },
        this.cfg,
      );
    }
    return r;
  }

  /** Folds in the replies found; asks the probe agents about the VMs still waiting for one. */
  private replies(rec: FailoverRecord, now: number): FailoverRecord {
    let r = rec;
    for (const v of awaitingReply(rec)) {
      const key = `${rec.id}/${v.vm}`;
      const found = this.answers.get(key);
      if (found) {
        this.answers.delete(key);
        this.emptyReplies.delete(key);
        r = applyAnswer(r, v.vm, found, this.cfg);
        const rto = r.vms.find((x) => x.vm === v.vm)?.rtoMs;
        if (rto != null) this.o.metrics?.failoverRto.observe({ tier: v.tier ?? 'none' }, rto / 1000);
        continue;
      }
      if (this.asking.has(key)) continue;
      this.asking.add(key);
      void this.o
        .probeWindow(v.vm, rec.failureAt - 2_000, now)
        .then((windows) => {
          if (windows.length === 0) {
            const n = (this.emptyReplies.get(key) ?? 0) + 1;
            this.emptyReplies.set(key, n);
            if (n === UNWATCHED_AFTER) this.o.wake?.();
            return;
          }
          this.emptyReplies.delete(key);
          for (const w of windows) {
            const reply = firstReply(v, (w.outages as Outage[] | undefined) ?? []);
            if (reply) {
              this.answers.set(key, { probe: w.probe, ...reply });
              this.o.wake?.();
              return;
            }
          }
        })
        .catch(() => undefined)
        .finally(() => this.asking.delete(key));
    }
    return r;
  }
}
