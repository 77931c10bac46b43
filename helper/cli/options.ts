// Options several commands take, each declared once.
import { Option } from 'commander';
import { UsageError } from './args.js';

/** `--days N`, 1..366. */
export const daysOption = (what: string) =>
  new Option('--days <n>', what).argParser((v: string) => {
    if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 366) throw new UsageError(`invalid --days "${v}" (1..366)`);
    return Number(v);
  });

export const runDirOption = () => new Option('--run <dir>', 'runtime dir of the helper (sockets)').env('TUNNELGATE_RUN');

export const uidOption = () =>
  new Option('--uid <uid>', 'admins: for this user').argParser((v) => {
    if (!/^\d+$/.test(v)) throw new UsageError(`invalid uid "${v}"`);
    return Number(v);
  });

export const etcOption = () => new Option('--etc <dir>', 'configuration dir (profiles.d/, trusted-keys/)').env('TUNNELGATE_ETC');
export const stateOption = () => new Option('--state <dir>', 'state dir of the helper (versions in force)').env('TUNNELGATE_STATE');

export const jsonOption = (what = 'one JSON document') => new Option('--json', what);

/** `--dst SPEC`, repeatable. */
export const collect = (v: string, prev: string[] = []) => [...prev, v];

/** `--uid` as API params. */
export const uidParams = (uid: number | undefined) => (uid !== undefined ? { uid } : {});
