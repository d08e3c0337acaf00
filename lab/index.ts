// The lab's TypeScript API, used by integration tests, benchmarks and the demo.
export { LabError } from './src/errors.ts';
export { waitFor } from './src/exec.ts';
export { guestLoad, parseGuestStatus } from './src/guest.ts';
export { virsh } from './src/host.ts';
export { freePort, labKeizokudConfig } from './src/keizokud-config.ts';
export {
  type CreateVmOptions,
  createVm,
  DEFAULT_WAN_RATE_MBIT,
  downLab,
  fenceHost,
  healHost,
  partitionHost,
  ping,
  requireLab,
  type UpOptions,
  upLab,
  waitForPing,
} from './src/lab.ts';
export { type HostLayout, type LabLayout, labLayout } from './src/layout.ts';
export { type VirshMigration, virshMigrate } from './src/migrate.ts';
export { type PingSummary, parsePingLog, startPing } from './src/ping-log.ts';
export { type LabState, listLabIds, readState, type VmRecord } from './src/state.ts';
export { type LabStatus, labStatus } from './src/status.ts';
