// A profile that was read and validated, with the file it came from (the input of
// helper/policy/merge.ts mergePolicy).
import type { Profile } from '../../common/profile.js';

/** A validated profile and the path of the file (or remote cache file) it was loaded from. */
export interface LoadedProfile {
  file: string;
  profile: Profile;
}
