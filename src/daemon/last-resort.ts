import type { Logger } from 'pino';

/** Exit status after an error nothing else caught (EX_SOFTWARE: a bug, restart me). */
export const EXIT_UNCAUGHT = 70;

/**
 * Last resort: an exception or promise rejection that nothing caught is logged as one fatal
 * line with its stack, and keizokud exits with EXIT_UNCAUGHT, instead of dying with a bare
 * stack trace on stderr. Its state is in Redis and libvirt, so a restart resumes from there.
 */
export function exitOnUncaught(log: Logger, exit: (code: number) => void = (c) => process.exit(c)): void {
  const die = (what: string) => (e: unknown) => {
    // pino's err serializer gives type, message, stack and the error's own fields (code).
    log.fatal({ err: e instanceof Error ? e : new Error(String(e)) }, `${what}; exiting`);
    log.flush?.();
    exit(EXIT_UNCAUGHT);
  };
  process.on('uncaughtException', die('uncaught exception'));
  process.on('unhandledRejection', die('unhandled promise rejection'));
}
