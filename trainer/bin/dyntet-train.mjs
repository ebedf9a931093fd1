#!/usr/bin/env node
// Entry point of the dyntet-train CLI; the TypeScript sources are compiled to ../dist by `npm run build`.
import { main } from '../dist/cli.js';

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => {
    console.error(`dyntet-train: ${err && err.message ? err.message : err}`);
    process.exitCode = 1;
  },
);
