export {
  ConfigError,
  type ConfigIssue,
  type ConfigPath,
  formatConfigError,
  formatIssue,
  formatPath,
  isConfigError,
} from './errors.ts';
export {
  isHostAddress,
  type LibvirtTransport,
  type LibvirtUri,
  type ListenAddress,
  parseLibvirtUri,
  parseListen,
} from './formats.ts';
export type { Holiday } from './holidays.ts';
export {
  type DeepReadonly,
  ENV_REDIS_URL,
  type Env,
  type LoadedConfig,
  loadConfig,
  loadLimitsFile,
  loadTiersFile,
  SHIPPED_LIMITS_FILE,
  SHIPPED_TIERS_FILE,
} from './load.ts';
export { assignmentFor, globToRegExp, matchesVm, type VmIdentity } from './match.ts';
export {
  crossSiteMechanisms,
  DATA_CLASS_IDS,
  type DataClass,
  type DataClassId,
  type LimitsPolicy,
  type LimitsProfile,
  limitsPolicySchema,
  MECHANISMS,
  type Mechanism,
  type Tier,
  type TierObjectives,
  type TiersPolicy,
  tiersPolicySchema,
} from './policies.ts';
export { SHIPPED_POLICIES_DIR } from './policy-files.ts';
export {
  type ApiConfig,
  type CrossSiteMigrationRule,
  configSchema,
  DRS_MODES,
  type DrsConfig,
  type DrsMode,
  type FenceConfig,
  type HostConfig,
  type KeizokuConfig,
  type LeaderConfig,
  type LibvirtConfig,
  type LoopsConfig,
  type MaintenanceWindowConfig,
  MIGRATION_COMPRESSION,
  type MigrationConfig,
  type PlacementConfig,
  type ScheduleConfig,
  type SiteConfig,
  type VmAssignment,
  type VmMatch,
} from './schema.ts';
