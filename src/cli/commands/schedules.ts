import type { Command } from 'commander';
import { clientFrom, enc, jsonFlag } from '../context.ts';
import { details, emit, table } from '../output.ts';

interface Schedule {
  name: string;
  kind: string;
  vms?: string[];
  hosts?: string[];
  stop?: string | null;
  start?: string | null;
  nextStop?: number | null;
  nextStart?: number | null;
  nextOpen?: number | null;
  /** While a maintenance window is open: when it closes. */
  openUntil?: number | null;
  runs: { at: number; action: string; vms: string[]; skipped: string | null; failed: { vm: string }[] }[];
}

const time = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString() : null);

export function scheduleCommands(program: Command): void {
  const sc = program.command('schedule').description('VM schedules and maintenance windows');
  sc.command('list').action(async (_o, cmd: Command) => {
    const { schedules } = await clientFrom(cmd).call<{ schedules: Schedule[] }>('GET', '/v1/schedules');
    emit({ json: jsonFlag(cmd) }, { schedules }, () =>
      table(
        ['NAME', 'KIND', 'TARGETS', 'STOP/OPEN', 'START', 'NEXT', 'LAST RUN'],
        schedules.map((s) => [
          s.name,
          s.kind,
          (s.vms ?? s.hosts ?? []).join(','),
          s.stop ?? (s.kind === 'maintenance-window' ? (s as unknown as { start: string }).start : null),
          s.kind === 'vm-schedule' ? s.start : null,
          time(
            Math.min(
              ...[s.nextStop, s.nextStart, s.nextOpen].filter((x): x is number => typeof x === 'number'),
            ),
          ),
          s.runs[0]
            ? `${time(s.runs[0].at)} ${s.runs[0].action}${s.runs[0].skipped ? ' (skipped)' : ''}`
            : null,
        ]),
      ),
    );
  });
  sc.command('show <name>').action(async (name: string, _o, cmd: Command) => {
    const s = await clientFrom(cmd).call<Schedule>('GET', `/v1/schedules/${enc(name)}`);
    emit({ json: jsonFlag(cmd) }, s, () => {
      const { runs, ...rest } = s;
      const times = Object.fromEntries(
        (['nextStop', 'nextStart', 'nextOpen', 'openUntil'] as const)
          .filter((k) => k in rest)
          .map((k) => [k, time(rest[k])]),
      );
      return `${details({ ...rest, ...times })}\n${table(
        ['AT', 'ACTION', 'TARGETS', 'SKIPPED', 'FAILED'],
        runs.map((r) => [
          time(r.at),
          r.action,
          r.vms.join(','),
          r.skipped,
          r.failed.map((f) => f.vm).join(','),
        ]),
      )}`;
    });
  });
}
