import type { Command } from 'commander';
import { ApiClient, resolveSettings } from './client.ts';

/** The API client for the global flags of the program a subcommand belongs to. */
export function clientFrom(cmd: Command): ApiClient {
  const g = cmd.optsWithGlobals() as { server?: string; token?: string; tokenFile?: string; ca?: string };
  return new ApiClient(
    resolveSettings({
      ...(g.server ? { server: g.server } : {}),
      ...(g.token ? { token: g.token } : {}),
      ...(g.tokenFile ? { tokenFile: g.tokenFile } : {}),
      ...(g.ca ? { ca: g.ca } : {}),
    }),
  );
}

export const jsonFlag = (cmd: Command): boolean =>
  (cmd.optsWithGlobals() as { json?: boolean }).json === true;

export const enc = encodeURIComponent;
