#!/usr/bin/env node
import { existsSync } from 'node:fs';

// `npm ci` runs no scripts here (.npmrc: ignore-scripts), so a fresh checkout is not built yet.
const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('cleanplate: not built yet: run `npm run build` (or `npm test`) in the package folder first\n');
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
