import type { Command } from 'commander';
import { type ApiClient, CliError, EXIT } from '../client.ts';
import { clientFrom, enc, jsonFlag } from '../context.ts';
import { details, emit, table } from '../output.ts';

interface Progress {
  phase: string;
  percent: number;
  dataRemainingBytes: number;
  iteration: number;
  dirtyRateBytesPerSec: number;
  elapsedMs: number;
}
interface Result {
  outcome: string;
  reason: string | null;
  host: string | null;
  totalMs: number | null;
  libvirtDowntimeMs: number | null;
  dataTransferredBytes: number | null;
  postCopy: boolean;
  probe: { probe: string; outageMs: number; lost: number; sent: number }[];
  session: { survived: boolean; reason?: string } | null;
}
export interface Job {
  id: string;
  vm: string;
  from: string;
  to: string;
  reason: string;
  state: string;
  createdAt: number;
  progress: Progress | null;
  result: Result | null;
}

const MiB = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
const FINISHED = (s: string) => s !== 'waiting' && s !== 'active';

function bar(p: Progress | null, width = 24): string {
  if (!p) return 'queued';
  if (p.phase !== 'migrating' && p.phase !== 'post-copy') return p.phase;
  const filled = Math.round((p.percent / 100) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.percent.toFixed(1).padStart(5)}%  remaining ${MiB(p.dataRemainingBytes)}  iteration ${p.iteration}  dirty ${MiB(p.dirtyRateBytesPerSec)}/s  ${(p.elapsedMs / 1000).toFixed(1)} s${p.phase === 'post-copy' ? '  post-copy' : ''}`;
}

export function summary(j: Job): string {
  const r = j.result;
  if (!r) return `${j.id}  ${j.vm}  ${j.from} -> ${j.to}  ${j.state}\n`;
  const outage = r.probe.length
    ? r.probe.map((p) => `${p.outageMs} ms (${p.probe}: ${p.lost}/${p.sent} lost)`).join(', ')
    : 'no probe';
  return details({
    job: j.id,
    vm: j.vm,
    move: `${j.from} -> ${j.to}`,
    outcome: r.outcome,
    reason: r.reason,
    runsOn: r.host,
    totalMs: r.totalMs,
    libvirtDowntimeMs: r.libvirtDowntimeMs,
    transferred: r.dataTransferredBytes === null ? null : MiB(r.dataTransferredBytes),
    postCopy: r.postCopy,
    probeOutage: outage,
    session: r.session ? (r.session.survived ? 'survived' : `broken: ${r.session.reason}`) : 'not checked',
  });
}

export function exitCodeOf(j: Job): number {
  if (j.state === 'succeeded') return EXIT.ok;
  if (j.state === 'refused') return EXIT.conflict;
  return EXIT.failed;
}

/** Polls until the jobs finish, drawing progress on a terminal; returns them finished. */
export async function watch(api: ApiClient, ids: string[], json: boolean): Promise<Job[]> {
  const tty = process.stderr.isTTY && !json;
  let drawn = 0;
  let lastPrint = 0;
  for (;;) {
    const jobs = await Promise.all(ids.map((id) => api.call<Job>('GET', `/v1/jobs/${enc(id)}`)));
    const lines = jobs.map(
      (j) => `${j.vm.padEnd(16)} ${j.from} -> ${j.to}  ${FINISHED(j.state) ? j.state : bar(j.progress)}`,
    );
    if (tty) {
      if (drawn) process.stderr.write(`\x1b[${drawn}A`);
      process.stderr.write(lines.map((l) => `\x1b[2K${l}\n`).join(''));
      drawn = lines.length;
    } else if (!json && Date.now() - lastPrint > 2_000) {
      process.stderr.write(`${lines.join('\n')}\n`);
      lastPrint = Date.now();
    }
    if (jobs.every((j) => FINISHED(j.state))) return jobs;
    await new Promise((r) => setTimeout(r, 300));
  }
}

export function jobCommands(program: Command, vm: Command, host: Command): void {
  vm.command('migrate <vm>')
    .description('live-migrate a VM (peer-to-peer); prints the job, or follows it with --wait')
    .option('--to <host>', 'destination (default: the best host of its site)')
    .option('--copy-storage', 'copy local disks too (no shared storage)')
    .option('--wait', 'follow progress until the end; exit code by outcome')
    .option('--max-downtime <ms>', 'longest pause allowed for the switch-over')
    .option('--timeout <ms>', 'abort after this long (the VM stays on the source)')
    .option('--post-copy-after <iterations>', 'switch to post-copy after this many iterations')
    .option('--no-auto-converge', 'do not throttle the guest to converge')
    .action(async (name: string, o: Record<string, string | boolean | undefined>, cmd: Command) => {
      const api = clientFrom(cmd);
      const policy: Record<string, unknown> = {};
      const int = (flag: string, v: unknown) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0)
          throw new CliError(`--${flag} "${v}": expected a whole number`, EXIT.usage);
        return n;
      };
      if (o.maxDowntime !== undefined) policy.maxDowntimeMs = int('max-downtime', o.maxDowntime);
      if (o.timeout !== undefined) policy.timeoutMs = int('timeout', o.timeout);
      if (o.postCopyAfter !== undefined)
        policy.postCopyAfterIterations = int('post-copy-after', o.postCopyAfter);
      if (o.autoConverge === false) policy.autoConverge = false;
      const job = await api.call<Job>('POST', `/v1/vms/${enc(name)}/migrate`, {
        ...(o.to ? { to: o.to } : {}),
        ...(o.copyStorage ? { copyStorage: true } : {}),
        ...(Object.keys(policy).length ? { policy } : {}),
      });
      if (!o.wait)
        return emit(
          { json: jsonFlag(cmd) },
          job,
          () => `job ${job.id}: ${job.vm} ${job.from} -> ${job.to} queued\n`,
        );
      const [done] = await watch(api, [job.id], jsonFlag(cmd));
      emit({ json: jsonFlag(cmd) }, done, () => summary(done!));
      process.exitCode = exitCodeOf(done!);
    });

  host
    .command('maintenance <host>')
    .description('enter maintenance (evacuate every VM, all or nothing) or exit it')
    .option('--enter', 'stop placing VMs there and move its VMs away')
    .option('--exit', 'make the host usable again')
    .option('--move-back', 'with --exit: move back the VMs the last evacuation moved off')
    .option('--any-site', 'with --enter: allow moves to other sites')
    .option('--wait', 'follow the moves until they end')
    .action(async (name: string, o: Record<string, boolean | undefined>, cmd: Command) => {
      if (Boolean(o.enter) === Boolean(o.exit))
        throw new CliError('give exactly one of --enter and --exit', EXIT.usage);
      const api = clientFrom(cmd);
      const r = await api.call<{ host: string; maintenance: boolean; jobs: Job[] }>(
        'POST',
        `/v1/hosts/${enc(name)}/maintenance`,
        {
          action: o.enter ? 'enter' : 'exit',
          ...(o.moveBack ? { moveBack: true } : {}),
          ...(o.anySite ? { anySite: true } : {}),
        },
      );
      if (!o.wait || r.jobs.length === 0)
        return emit(
          { json: jsonFlag(cmd) },
          r,
          () =>
            `${name}: ${r.maintenance ? 'in maintenance' : 'in service'}; ${r.jobs.length} migration(s) queued\n${table(
              ['JOB', 'VM', 'FROM', 'TO'],
              r.jobs.map((j) => [j.id, j.vm, j.from, j.to]),
            )}`,
        );
      const done = await watch(
        api,
        r.jobs.map((j) => j.id),
        jsonFlag(cmd),
      );
      emit({ json: jsonFlag(cmd) }, { ...r, jobs: done }, () => done.map(summary).join('\n'));
      process.exitCode = done.every((j) => j.state === 'succeeded') ? EXIT.ok : EXIT.failed;
    });

  const job = program.command('job').description('migration jobs');
  job
    .command('list')
    .option('--vm <vm>', 'only this VM')
    .option('--limit <n>', 'at most this many', '50')
    .action(async (o: { vm?: string; limit: string }, cmd: Command) => {
      const q = new URLSearchParams({ limit: o.limit, ...(o.vm ? { vm: o.vm } : {}) });
      const { jobs } = await clientFrom(cmd).call<{ jobs: Job[] }>('GET', `/v1/jobs?${q}`);
      emit({ json: jsonFlag(cmd) }, { jobs }, () =>
        table(
          ['JOB', 'CREATED', 'VM', 'FROM', 'TO', 'STATE', 'TOTAL ms', 'DOWNTIME ms', 'OUTAGE ms', 'WHY'],
          jobs.map((j) => [
            j.id,
            new Date(j.createdAt).toISOString(),
            j.vm,
            j.from,
            j.to,
            FINISHED(j.state) ? j.state : `${j.state} ${j.progress ? `${j.progress.percent}%` : ''}`,
            j.result?.totalMs,
            j.result?.libvirtDowntimeMs,
            j.result?.probe[0]?.outageMs,
            j.reason,
          ]),
        ),
      );
    });
  job.command('show <id>').action(async (id: string, _o, cmd: Command) => {
    const j = await clientFrom(cmd).call<Job>('GET', `/v1/jobs/${enc(id)}`);
    emit({ json: jsonFlag(cmd) }, j, () => summary(j));
  });
  job
    .command('watch <id>')
    .description('follow a job until it ends')
    .action(async (id: string, _o, cmd: Command) => {
      const [done] = await watch(clientFrom(cmd), [id], jsonFlag(cmd));
      emit({ json: jsonFlag(cmd) }, done, () => summary(done!));
      process.exitCode = exitCodeOf(done!);
    });
  job
    .command('cancel <id>')
    .description('abort: the VM stays where it was')
    .action(async (id: string, _o, cmd: Command) => {
      const j = await clientFrom(cmd).call<Job>('DELETE', `/v1/jobs/${enc(id)}`);
      emit({ json: jsonFlag(cmd) }, j, () => `cancelling ${j.id} (${j.vm})\n`);
    });
}
