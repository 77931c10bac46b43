#!/usr/bin/env node
// The `tunnelgate` executable (package.json `bin`): the helper and the CLI are one program;
// helper/cli/program.ts dispatches on the command.
import { main } from './cli/program.js';

process.exitCode = await main(process.argv);
