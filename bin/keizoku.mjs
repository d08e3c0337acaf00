#!/usr/bin/env node
// The operator CLI, run from its TypeScript sources.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
