#!/usr/bin/env node
// keizoku-probe, run from its TypeScript sources.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../agents/probe/main.ts');
process.exitCode = await main(process.argv.slice(2));
