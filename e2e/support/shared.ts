// The one place tests find the team's shared material (clips, the face-tracking model):
// $DYNTET_SHARED if set, else the `shared` folder beside the repository.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function sharedPath(...parts: string[]): string {
  const root = process.env.DYNTET_SHARED ?? join(REPO_ROOT, '..', 'shared');
  const p = join(root, ...parts);
  if (!existsSync(p)) throw new Error(`shared test material not found: ${p} (set DYNTET_SHARED to the shared folder)`);
  return p;
}
