/**
 * Generates src/libvirt/protocol/generated/*.ts from libvirt's XDR protocol definitions.
 *
 *   npm run gen:libvirt                      # writes src/libvirt/protocol/generated/
 *   tsx scripts/gen-libvirt-protocol.ts --out DIR
 *   tsx scripts/gen-libvirt-protocol.ts --check   # exit 1 when the committed files are stale
 *
 * Input: the .x files in $LIBVIRT_PROTOCOL_DIR, default ../shared/libvirt-protocol relative to
 * the repository root. Parser: scripts/libvirt-gen/parser.ts; emitter: scripts/libvirt-gen/emitter.ts.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { emitCommon, emitModule } from './libvirt-gen/emitter.ts';
import { COMMON_MODULE, Model, type ModuleInput } from './libvirt-gen/model.ts';
import { parseX } from './libvirt-gen/parser.ts';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const GENERATED_DIR = path.join(REPO_ROOT, 'src/libvirt/protocol/generated');

/** .x file -> generated module, in dependency order. */
export const PROTOCOL_FILES: readonly { readonly xfile: string; readonly module: string }[] = [
  { xfile: 'virnetprotocol.x', module: 'virnet' },
  { xfile: 'remote_protocol.x', module: 'remote' },
  { xfile: 'virkeepaliveprotocol.x', module: 'keepalive' },
  { xfile: 'qemu_protocol.x', module: 'qemu' },
];

export function protocolDir(): string {
  return path.resolve(REPO_ROOT, process.env.LIBVIRT_PROTOCOL_DIR ?? '../shared/libvirt-protocol');
}

/** Generates every module; returns file name -> contents. */
export function generate(dir: string = protocolDir()): Map<string, string> {
  const inputs: ModuleInput[] = PROTOCOL_FILES.map(({ xfile, module }) => ({
    module,
    x: parseX(xfile, readFileSync(path.join(dir, xfile), 'utf8')),
  }));
  const model = new Model(inputs);
  const out = new Map<string, string>();
  out.set(`${COMMON_MODULE}.ts`, emitCommon());
  for (const { xfile, module } of PROTOCOL_FILES) out.set(`${module}.ts`, emitModule(model, module, xfile));
  return out;
}

function main(argv: readonly string[]): number {
  let outDir = GENERATED_DIR;
  let check = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out' && argv[i + 1] !== undefined) outDir = path.resolve(argv[++i]!);
    else if (a === '--check') check = true;
    else {
      console.error('usage: gen-libvirt-protocol [--out DIR] [--check]');
      return 2;
    }
  }
  const dir = protocolDir();
  if (!existsSync(dir)) {
    console.error(`libvirt protocol directory not found: ${dir} (set LIBVIRT_PROTOCOL_DIR)`);
    return 1;
  }
  const files = generate(dir);
  if (check) {
    const stale = [...files].filter(([name, text]) => {
      const target = path.join(outDir, name);
      return !existsSync(target) || readFileSync(target, 'utf8') !== text;
    });
    for (const [name] of stale) console.error(`stale: ${path.join(outDir, name)}`);
    return stale.length === 0 ? 0 : 1;
  }
  mkdirSync(outDir, { recursive: true });
  for (const [name, text] of files) writeFileSync(path.join(outDir, name), text);
  console.log(`wrote ${files.size} files to ${path.relative(process.cwd(), outDir) || '.'}`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = main(process.argv.slice(2));
}
