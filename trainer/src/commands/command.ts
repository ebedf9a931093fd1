/** A dyntet-train subcommand: each lives in its own module under commands/. */
export interface Command {
  /** One line for the command list. */
  summary: string;
  /** Full `--help` text. */
  usage: string;
  /** Runs with the arguments after the command name; resolves to the process exit code. */
  run(args: string[]): Promise<number>;
}

/** An error whose message is meant for the user as is: what went wrong and what to do. */
export class UsageError extends Error {
  override name = 'UsageError';
}
