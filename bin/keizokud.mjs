#!/usr/bin/env node
// Runs keizokud from its TypeScript sources.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/daemon/keizokud.ts');
const code = await main(process.argv.slice(2));
// Drained (or refused to start): exit now, whatever handle a library still holds open.
process.exit(code);
