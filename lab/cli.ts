// `npm run lab -- <command>`: the lab of libvirt hosts in network namespaces.
import { parseArgs } from 'node:util';
import { LabError } from './src/errors.ts';
import { guestLoad } from './src/guest.ts';
import { createVm, downLab, fenceHost, healHost, partitionHost, requireLab, upLab } from './src/lab.ts';
import { listLabIds, readState } from './src/state.ts';
import { labStatus } from './src/status.ts';

const USAGE = `usage: npm run lab -- <command> [--lab ID]
  up --hosts N --sites M [--wan-rate MBIT] [--domain-type qemu|kvm]
  down [--owner OWNER]     (--owner: every lab brought up by that owner, e.g. test:RUNID)
  vm create NAME --host H [--disk local|shared|none] [--memory MIB] [--label K=V]... [--no-wait]
  vm load NAME [--burn start|stop] [--dirty start|stop] [--mb N]
  fence H | partition H | heal H
  status [--json]
The lab id (0-49) comes from --lab, else KEIZOKU_LAB_ID, else 0.`;

const options = {
  lab: { type: 'string' },
  hosts: { type: 'string' },
  sites: { type: 'string' },
  'wan-rate': { type: 'string' },
  'domain-type': { type: 'string' },
  host: { type: 'string' },
  disk: { type: 'string' },
  memory: { type: 'string' },
  label: { type: 'string', multiple: true },
  'no-wait': { type: 'boolean' },
  burn: { type: 'string' },
  dirty: { type: 'string' },
  mb: { type: 'string' },
  json: { type: 'boolean' },
  owner: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function int(name: string, v: string | undefined, dflt?: number): number {
  if (v === undefined) {
    if (dflt === undefined) throw new LabError(`--${name} is required`);
    return dflt;
  }
  if (!/^\d+$/.test(v)) throw new LabError(`--${name} must be a whole number, got '${v}'`);
  return Number(v);
}

function one(args: string[], what: string): string {
  if (args.length !== 1)
    throw new LabError(`expected exactly one ${what}, got ${args.length ? args.join(' ') : 'none'}`);
  return args[0]!;
}

async function main(argv: string[]): Promise<void> {
  const { values: o, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  const [cmd, ...rest] = positionals;
  if (o.help || !cmd) {
    console.log(USAGE);
    return;
  }
  const id = int('lab', o.lab ?? process.env.KEIZOKU_LAB_ID, 0);
  switch (cmd) {
    case 'up': {
      const t0 = Date.now();
      const state = await upLab({
        id,
        hosts: int('hosts', o.hosts, 3),
        sites: int('sites', o.sites, 2),
        wanRateMbit: o['wan-rate'] === undefined ? undefined : int('wan-rate', o['wan-rate']),
        domainType: o['domain-type'],
        owner: 'cli',
      });
      console.log(
        `lab ${id} up in ${Date.now() - t0} ms: ${state.layout.hosts.map((h) => `${h.name}(${h.site}) ${h.uri}`).join(', ')}`,
      );
      return;
    }
    case 'down': {
      if (o.owner !== undefined) {
        const ids = listLabIds().filter((l) => readState(l)?.owner === o.owner);
        for (const l of ids) await downLab(l);
        console.log(ids.length ? `labs ${ids.join(', ')} down` : `no lab of ${o.owner} is up`);
        return;
      }
      const t0 = Date.now();
      const was = await downLab(id);
      console.log(was ? `lab ${id} down in ${Date.now() - t0} ms` : `lab ${id} was not up; nothing to do`);
      return;
    }
    case 'vm':
      return vmCommand(id, rest, o);
    case 'fence':
    case 'partition':
    case 'heal': {
      const host = one(rest, 'host name');
      const act = { fence: fenceHost, partition: partitionHost, heal: healHost }[cmd];
      await act(id, host);
      console.log(`${cmd}: ${host} done`);
      return;
    }
    case 'status': {
      const s = await labStatus(requireLab(id));
      if (o.json) {
        console.log(JSON.stringify(s, null, 2));
        return;
      }
      console.log(
        `lab ${s.id}: domain type ${s.domainType}, WAN ${s.wanRateMbit} Mbit/s, controller ${s.controller.mgmtAddress} / ${s.controller.serviceAddress}`,
      );
      for (const h of s.hosts)
        console.log(`  host ${h.name.padEnd(4)} ${h.site.padEnd(4)} ${h.state.padEnd(12)} ${h.uri}`);
      for (const v of s.vms)
        console.log(
          `  vm   ${v.name.padEnd(12)} ${v.address.padEnd(14)} ${(v.host ?? '-').padEnd(4)} ${v.state}`,
        );
      return;
    }
    default:
      throw new LabError(`unknown command '${cmd}' (see 'npm run lab -- --help')`);
  }
}

function labelsOf(pairs: string[] = []): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new LabError(`--label needs KEY=VALUE, got '${p}'`);
    labels[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return labels;
}

async function vmCommand(
  id: number,
  rest: string[],
  o: Record<string, string | boolean | string[] | undefined>,
): Promise<void> {
  const [sub, ...args] = rest;
  const name = one(args, 'VM name');
  if (sub === 'create') {
    if (typeof o.host !== 'string') throw new LabError('vm create needs --host H');
    const t0 = Date.now();
    const vm = await createVm(id, {
      name,
      host: o.host,
      disk: o.disk as 'local' | 'shared' | 'none' | undefined,
      memoryMiB: o.memory === undefined ? undefined : int('memory', o.memory as string),
      labels: labelsOf(o.label as string[] | undefined),
      wait: !o['no-wait'],
    });
    console.log(
      `vm ${vm.name} on ${vm.createdOn} at ${vm.address} (${o['no-wait'] ? 'started' : `answering ping after ${Date.now() - t0} ms`})`,
    );
    return;
  }
  if (sub === 'load') {
    const vm = requireLab(id).vms.find((v) => v.name === name);
    if (!vm) throw new LabError(`unknown VM '${name}' in lab ${id}`);
    const query = { burn: o.burn, dirty: o.dirty, mb: o.mb } as Record<string, string | undefined>;
    console.log(await guestLoad(vm.address, query));
    return;
  }
  throw new LabError(`unknown vm command '${sub ?? ''}' (create or load)`);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  const msg =
    e instanceof LabError || (e instanceof TypeError && 'code' in e)
      ? e.message
      : String((e as Error)?.stack ?? e);
  console.error(`lab: ${msg}`);
  process.exit(1);
});
