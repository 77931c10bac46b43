// Reading profiles.d: every *.json, each validated on its own; a bad file is reported
// and left out, never allowed to break the others or open the gate.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { SourceStatus } from '../../common/policy.js';
import type { LoadedProfile } from '../policy/merge.js';
import { formatProblems, validateProfile } from '../profile/validate.js';

export interface LoadResult {
  profiles: LoadedProfile[];
  rejected: SourceStatus[];
}

export async function loadProfiles(dir: string): Promise<LoadResult> {
  const out: LoadResult = { profiles: [], rejected: [] };
  let names: string[];
  try {
    names = (await fs.readdir(dir)).filter((n) => n.endsWith('.json')).sort();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') return out;
    out.rejected.push({ file: dir, state: 'rejected', problems: [`cannot read the profile directory: ${err.message}`] });
    return out;
  }
  for (const name of names) {
    const file = path.join(dir, name);
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (e) {
      out.rejected.push({ file, state: 'rejected', problems: [`cannot read: ${(e as Error).message}`] });
      continue;
    }
    const v = validateProfile(text, file);
    if (v.ok) out.profiles.push({ file, profile: v.profile });
    else out.rejected.push({ file, state: 'rejected', problems: formatProblems(file, v.problems) });
  }
  return out;
}
