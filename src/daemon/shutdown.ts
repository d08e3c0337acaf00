import type { EventEmitter } from 'node:events';

/** One part of keizokud to stop, in order (API first, Redis last). */
export interface DrainStep {
  name: string;
  stop: () => Promise<unknown>;
}

interface ShutdownLog {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
  error(o: object, msg: string): void;
}

/**
 * Graceful stop on SIGTERM or SIGINT: runs the steps in order (a step that fails is logged
 * and the next one runs), and resolves with 0, or 1 when a step failed. The drain waits for
 * running migrations and drills, so it is bounded: after `timeoutMs`, or at a second signal,
 * `exit(1)` ends the process at once. A move cut off that way is left to libvirt, and the
 * job's re-run reconciles from libvirt where the VM is.
 */
export function drainOnSignals(o: {
  steps: DrainStep[];
  log: ShutdownLog;
  timeoutMs: number;
  signals?: EventEmitter;
  exit?: (code: number) => void;
}): Promise<number> {
  const signals = o.signals ?? process;
  const exit = o.exit ?? ((c: number) => process.exit(c));
  return new Promise<number>((resolve) => {
    let draining = false;
    let timer: NodeJS.Timeout | null = null;
    const onSignal = (signal: string) => {
      if (draining) {
        o.log.warn({ signal }, 'second signal: exiting without finishing the drain');
        exit(1);
        return;
      }
      draining = true;
      o.log.info({ signal, timeoutMs: o.timeoutMs }, 'draining');
      timer = setTimeout(() => {
        o.log.error({ timeoutMs: o.timeoutMs }, 'drain did not finish in time: exiting');
        exit(1);
      }, o.timeoutMs);
      void drain().then((failed) => {
        if (timer) clearTimeout(timer);
        o.log.info({ failedSteps: failed }, 'stopped');
        resolve(failed > 0 ? 1 : 0);
      });
    };
    const drain = async (): Promise<number> => {
      let failed = 0;
      for (const step of o.steps) {
        try {
          await step.stop();
        } catch (e) {
          failed++;
          o.log.warn({ step: step.name, err: (e as Error)?.message ?? String(e) }, 'stopping failed');
        }
      }
      return failed;
    };
    signals.on('SIGTERM', () => onSignal('SIGTERM'));
    signals.on('SIGINT', () => onSignal('SIGINT'));
  });
}
