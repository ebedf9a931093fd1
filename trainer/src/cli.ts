import type { Command } from './commands/command.js';
import { UsageError } from './commands/command.js';

// Commands load lazily so that `prepare` never pays for the native addon and `fit` never for the browser.
const COMMANDS: Record<string, () => Promise<{ default: Command }>> = {
  demo: () => import('./commands/demo.js'),
  prepare: () => import('./commands/prepare.js'),
  eval: () => import('./commands/eval.js'),
  synth: () => import('./commands/synth.js'),
  fit: () => import('./commands/fit.js'),
  export: () => import('./commands/export.js'),
  render: () => import('./commands/render.js'),
};

async function loadCommand(name: string): Promise<Command | undefined> {
  const load = COMMANDS[name];
  if (!load) return undefined;
  try {
    return (await load()).default;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String(err).includes(`commands/${name}.js`)) return undefined;
    throw err;
  }
}

async function usage(): Promise<string> {
  const lines = ['Usage: dyntet-train <command> [options]', '', 'Commands:'];
  for (const name of Object.keys(COMMANDS)) {
    const cmd = await loadCommand(name);
    if (cmd) lines.push(`  ${name.padEnd(10)} ${cmd.summary}`);
  }
  lines.push('', 'Run `dyntet-train <command> --help` for the options of a command.');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(await usage());
    return name ? 0 : 1;
  }
  if (name === '--version') {
    console.log('dyntet-train 0.1.0');
    return 0;
  }
  const cmd = await loadCommand(name);
  if (!cmd) {
    console.error(`dyntet-train: unknown command "${name}"\n\n${await usage()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(cmd.usage);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`dyntet-train ${name}: ${err.message}`);
      return 2;
    }
    throw err;
  }
}
