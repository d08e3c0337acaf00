import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import {
  appendFileSync,
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { labDir } from '../../lab/src/state.ts';
import type { FenceConfig } from '../../src/config/index.ts';
import { alive, recordChild } from './process.ts';

export const IPMI_SIM = '/usr/bin/ipmi_sim';
export const IPMITOOL = '/usr/bin/ipmitool';
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * What the simulated BMC does with its chassis: shell commands run by ipmi_sim's chassis control
 * program (`chassis_control` in lan.conf) with IPMI_SIM_DIR set to the simulator's directory.
 * ipmi_sim runs them synchronously, answering no IPMI request meanwhile: a command that takes
 * longer than ipmitool's retransmit interval (1 s on lanplus) puts itself in the background.
 */
export interface ChassisHooks {
  /** `chassis power off`; a non-zero exit fails the IPMI command (completion code 0xff). */
  powerOff: string;
  /** `chassis power on`. */
  powerOn: string;
  /** Exits 0 while the machine has power: what `chassis power status` reports. */
  powerStatus: string;
}

/**
 * The stand-in machine of the default hooks: a process whose life is the power. Off kills it,
 * status is whether it still lives (a zombie does not), on starts a new one.
 */
export const MACHINE: ChassisHooks = {
  powerOff: 'kill -KILL "$(cat "$IPMI_SIM_DIR/machine.pid")"',
  powerOn: 'sleep 1000000 </dev/null >/dev/null 2>&1 & echo $! > "$IPMI_SIM_DIR/machine.pid"',
  powerStatus:
    'p=$(cat "$IPMI_SIM_DIR/machine.pid") && [ -r "/proc/$p/stat" ] && ! grep -q ") Z " "/proc/$p/stat"',
};

export interface IpmiSim {
  port: number;
  /** ipmi_sim's pid. */
  pid: number;
  dir: string;
  username: string;
  /** Holds the BMC user's password (mode 0600). */
  passwordFile: string;
  password: string;
  /** Every request ipmi_sim passed to its chassis control program, e.g. `get power`, `set power 0`. */
  requests(): string[];
  /** Output of the hooks so far. */
  hookLog(): string;
  /** Replaces some of the hooks; ipmi_sim runs the new ones from its next request. */
  setHooks(h: Partial<ChassisHooks>): void;
  /** The stand-in machine's pid while it runs (default hooks), else null. */
  machinePid(): number | null;
  /** A `hosts[].fence` for this BMC. */
  fence(o?: { interface?: 'lan' | 'lanplus'; confirmTimeoutMs?: number; passwordFile?: string }): FenceConfig;
  /** Stops ipmi_sim and the stand-in machine, removes the directory. Safe to call twice. */
  close(): Promise<void>;
}

export const ipmiSimMissing = (): string | null =>
  existsSync(IPMI_SIM) && existsSync(IPMITOOL)
    ? null
    : `${existsSync(IPMI_SIM) ? IPMITOOL : IPMI_SIM} is not installed (scripts/setup.sh installs ipmitool and openipmi)`;

/** Whether the process lives: a killed one whose parent has not reaped it yet does not. */
export function running(pid: number): boolean {
  try {
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

/** A UDP port on 127.0.0.1 nobody uses right now. */
async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((ok, fail) => {
    s.once('error', fail);
    s.bind(0, '127.0.0.1', () => ok());
  });
  const { port } = s.address();
  await new Promise<void>((ok) => s.close(() => ok()));
  return port;
}

const hookFile = (dir: string, name: keyof ChassisHooks) => join(dir, 'hooks', name);

function writeHooks(dir: string, h: Partial<ChassisHooks>): void {
  for (const [name, cmd] of Object.entries(h) as [keyof ChassisHooks, string][]) {
    writeFileSync(hookFile(dir, name), `#!/bin/sh\n${cmd}\n`);
    chmodSync(hookFile(dir, name), 0o755);
  }
}

/**
 * The control program ipmi_sim runs as `chassis <device> get power` (prints `power:1` or
 * `power:0`) and `chassis <device> set power 0|1` (empty output on success).
 */
function chassisProgram(dir: string): string {
  return `#!/bin/sh
export IPMI_SIM_DIR='${dir}'
h="$IPMI_SIM_DIR/hooks"
shift
op=$1
shift
echo "$op $*" >> "$IPMI_SIM_DIR/requests"
case "$op" in
get)
  for p in "$@"; do
    case "$p" in
    power) if "$h/powerStatus" >>"$IPMI_SIM_DIR/hooks.log" 2>&1; then echo power:1; else echo power:0; fi ;;
    *) echo "not simulated: get $p"; exit 1 ;;
    esac
  done ;;
set)
  while [ $# -ge 2 ]; do
    case "$1:$2" in
    power:0) "$h/powerOff" >>"$IPMI_SIM_DIR/hooks.log" 2>&1 || exit 1 ;;
    power:1) "$h/powerOn" >>"$IPMI_SIM_DIR/hooks.log" 2>&1 || exit 1 ;;
    *) echo "not simulated: set $1 $2"; exit 1 ;;
    esac
    shift 2
  done ;;
*) echo "not simulated: $op"; exit 1 ;;
esac
`;
}

function lanConf(dir: string, port: number, username: string, password: string): string {
  return `name "keizoku-bmc"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 ${port}
    priv_limit admin
    allowed_auths_callback md5
    allowed_auths_user md5
    allowed_auths_operator md5
    allowed_auths_admin md5
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "${join(dir, 'chassis')} 0x20"
  user 2 true "${username}" "${password}" admin 4 md5
`;
}

/** One BMC at 0x20, no sensors: chassis control is all a fence uses. */
const EMU = `mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02
mc_enable 0x20
`;

/**
 * Starts OpenIPMI's ipmi_sim on 127.0.0.1 (a free UDP port; IPMI 1.5 `lan` with MD5 and 2.0
 * `lanplus`) with a generated lan.conf, emulator command file and user password file in a temp
 * directory. Power is what the hooks say (default: the stand-in machine, started on). Waits
 * until the BMC answers `mc info`.
 */
export async function startIpmiSim(hooks: Partial<ChassisHooks> = {}): Promise<IpmiSim> {
  const missing = ipmiSimMissing();
  if (missing) throw new Error(missing);
  const dir = mkdtempSync(join(tmpdir(), 'keizoku-ipmi-sim-'));
  let child: ChildProcess | null = null;
  const machinePid = () => {
    try {
      const p = Number(readFileSync(join(dir, 'machine.pid'), 'utf8'));
      return p > 0 && running(p) ? p : null;
    } catch {
      return null;
    }
  };
  const stop = () => {
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null)
      child.kill('SIGKILL');
    const m = machinePid();
    try {
      if (m !== null && readFileSync(`/proc/${m}/cmdline`, 'utf8').startsWith('sleep'))
        process.kill(m, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  };
  process.once('exit', stop);
  try {
    mkdirSync(join(dir, 'hooks'));
    mkdirSync(join(dir, 'state'));
    const all = { ...MACHINE, ...hooks };
    writeHooks(dir, all);
    writeFileSync(join(dir, 'chassis'), chassisProgram(dir));
    chmodSync(join(dir, 'chassis'), 0o755);
    writeFileSync(join(dir, 'bmc.emu'), EMU);
    const username = 'fence';
    const password = `kz${Math.random().toString(36).slice(2, 12)}`;
    const passwordFile = join(dir, 'password');
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    // The stand-in machine is on from the start, as a host is when its BMC is configured.
    if (hooks.powerStatus === undefined)
      execFileSync('sh', [hookFile(dir, 'powerOn')], {
        env: { ...process.env, IPMI_SIM_DIR: dir },
        stdio: 'ignore',
      });
    let port = 0;
    let stderr = '';
    for (let attempt = 0; ; attempt++) {
      port = await freeUdpPort();
      writeFileSync(join(dir, 'lan.conf'), lanConf(dir, port, username, password));
      const c = spawn(
        IPMI_SIM,
        ['-c', join(dir, 'lan.conf'), '-f', join(dir, 'bmc.emu'), '-s', join(dir, 'state'), '-n'],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      child = c;
      recordChild(c.pid, 'ipmi_sim');
      stderr = '';
      c.stderr?.on('data', (d) => {
        stderr += d;
      });
      if (await answers(port, passwordFile, username, c)) break;
      stop();
      if (attempt === 2)
        throw new Error(`ipmi_sim did not answer on 127.0.0.1:${port}: ${stderr.trim() || 'no output'}`);
    }
    const pid = child.pid!;
    const sim: IpmiSim = {
      port,
      pid,
      dir,
      username,
      passwordFile,
      password,
      requests: () => {
        const f = join(dir, 'requests');
        return existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').filter(Boolean) : [];
      },
      hookLog: () => (existsSync(join(dir, 'hooks.log')) ? readFileSync(join(dir, 'hooks.log'), 'utf8') : ''),
      setHooks: (h) => writeHooks(dir, h),
      machinePid,
      fence: (o = {}) => {
        const lan = o.interface === 'lan';
        return {
          method: 'ipmi',
          address: '127.0.0.1',
          port,
          username,
          passwordFile: o.passwordFile ?? passwordFile,
          interface: lan ? 'lan' : 'lanplus',
          // ipmi_sim does not answer Get Channel Cipher Suites: name the suite (RAKP-HMAC-SHA1).
          ...(lan ? {} : { cipherSuite: 3 }),
          confirmTimeoutMs: o.confirmTimeoutMs ?? 5_000,
        };
      },
      close: async () => {
        stop();
        process.removeListener('exit', stop);
        for (let i = 0; i < 50 && alive(pid); i++) await sleep(20);
        rmSync(dir, { recursive: true, force: true });
      },
    };
    return sim;
  } catch (e) {
    stop();
    process.removeListener('exit', stop);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/** Polls `mc info` (no chassis request) until ipmi_sim answers, or it exits, or 5 s pass. */
async function answers(
  port: number,
  passwordFile: string,
  username: string,
  c: ChildProcess,
): Promise<boolean> {
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline && c.exitCode === null && c.signalCode === null) {
    try {
      execFileSync(
        IPMITOOL,
        [
          '-I',
          'lanplus',
          '-C',
          '3',
          '-H',
          '127.0.0.1',
          '-p',
          String(port),
          '-U',
          username,
          '-f',
          passwordFile,
          '-R',
          '1',
          '-N',
          '1',
          'mc',
          'info',
        ],
        { stdio: 'ignore', timeout: 3_000 },
      );
      return true;
    } catch {
      await sleep(100);
    }
  }
  return false;
}

/**
 * Hooks that make a lab host's BMC: power off is the lab's power cut (`lab fence`), power on
 * its heal, both run in the background as a BMC acts after answering; the power is on while
 * the host's first process (the subreaper running its libvirtd and QEMUs) lives.
 */
export function labHostHooks(labId: number, host: string): ChassisHooks {
  const lab = (verb: string) =>
    `cd '${ROOT}' && node --import tsx lab/cli.ts ${verb} ${host} --lab ${labId} </dev/null >>"$IPMI_SIM_DIR/lab.log" 2>&1 &`;
  const state = join(labDir(labId), 'state.json');
  const check = `const h=JSON.parse(require('fs').readFileSync('${state}','utf8')).hosts.find(h=>h.name==='${host}');let s='';try{s=require('fs').readFileSync('/proc/'+h.reaperPid+'/stat','utf8')}catch{}process.exit(h.reaperPid&&s&&!s.includes(') Z ')?0:1)`;
  return { powerOff: lab('fence'), powerOn: lab('heal'), powerStatus: `node -e "${check}"` };
}

/** Records every ipmitool argv (one line each) to a file by a wrapper first on PATH. */
export function recordIpmitoolArgv(): { log: string; restore: () => void; lines: () => string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'keizoku-ipmitool-argv-'));
  const log = join(dir, 'argv');
  appendFileSync(log, '');
  writeFileSync(join(dir, 'ipmitool'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\nexec ${IPMITOOL} "$@"\n`);
  chmodSync(join(dir, 'ipmitool'), 0o755);
  const before = process.env.PATH;
  process.env.PATH = `${dir}:${before ?? ''}`;
  return {
    log,
    lines: () => readFileSync(log, 'utf8').trim().split('\n').filter(Boolean),
    restore: () => {
      process.env.PATH = before;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
