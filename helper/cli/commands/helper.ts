// `tunnelgate helper`: the privileged helper itself, in the foreground.
import type { Command } from 'commander';
import { Option } from 'commander';
import { escapeConsole } from '../../../common/node/log.js';
import { resolvePaths } from '../../config.js';
import { complain } from '../io.js';
import { runDirOption } from '../options.js';

export function addHelperCommand(program: Command): void {
  program
    .command('helper')
    .description('run the privileged helper in the foreground')
    .addOption(new Option('--etc <dir>', 'configuration dir (profiles.d/, trusted-keys/)').env('TUNNELGATE_ETC'))
    .addOption(new Option('--state <dir>', 'state dir (user decisions, audit log)').env('TUNNELGATE_STATE'))
    .addOption(runDirOption())
    .addOption(new Option('--cgroup-root <name>', 'name of the cgroup subtree').env('TUNNELGATE_CGROUP_ROOT'))
    .option('--uninstall-rules', 'remove the tunnelgate table and cgroups, then exit')
    .action(async (o: { etc?: string; state?: string; run?: string; cgroupRoot?: string; uninstallRules?: boolean }) => {
      // Loaded here, not at the top: the client commands never pay for the daemon's modules.
      const { runHelper, uninstallRules } = await import('../../startup.js');
      // Every message the helper writes with console.error is escaped at the writer.
      escapeConsole();
      const paths = resolvePaths(o);
      if (o.uninstallRules) {
        await uninstallRules({ paths });
        complain('tunnelgate: table inet tunnelgate and its cgroups removed');
      } else {
        await runHelper({ paths });
      }
    });
}
