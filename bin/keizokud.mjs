#!/usr/bin/env node
// Runs keizokud from its TypeScript sources.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/daemon/keizokud.ts');
process.exitCode = await main(process.argv.slice(2));
