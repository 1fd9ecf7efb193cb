#!/usr/bin/env node
/** The `cuttle` command: dispatches to a sub-command and turns errors into a clear line and exit code. */
import { CuttleError } from '../protocol/index.js';
import { agentVersion } from './version.js';

// Each command is loaded when it runs: the daemon then never loads the reference server, the
// systemd installer or the demo, which an idle agent would otherwise keep in memory.

const USAGE = `usage: cuttle <command> [options]

commands:
  agent          run the worker agent daemon (see --help in the README for its flags)
  config check   validate the agent configuration (same flags as agent) and print it, token redacted
  try            run a demo step end to end: in-process reference server, agent, real container
  server         run the reference server (--listen HOST:PORT --token T --data DIR)
  submit FILE    submit a task to a reference server's HTTP API (--server URL --token T --follow)
  prepull IMAGE  pull images ahead of the first task (--pull-policy always|if-not-present)
  service        install|uninstall|status the systemd service (--dry-run prints the plan; docs/operations.md)
  version        print the version`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'agent':
      return (await import('./commands/agent-command.js')).agentCommand(rest);
    case 'config': {
      if (rest[0] !== 'check') break;
      const { configFromArgs } = await import('./commands/agent-command.js');
      console.log(
        JSON.stringify(
          { ...configFromArgs(rest.slice(1), process.env), token: '<redacted>' },
          null,
          2,
        ),
      );
      return 0;
    }
    case 'try':
      return (await import('./commands/try-command.js')).tryCommand();
    case 'server':
      return (await import('./commands/server-command.js')).serverCommand(rest);
    case 'submit':
      return (await import('./commands/submit-command.js')).submitCommand(rest);
    case 'prepull':
      return (await import('./commands/prepull-command.js')).prepullCommand(rest);
    case 'service':
      return (await import('./commands/service-command.js')).serviceCommand(rest);
    case 'version':
    case '--version':
      console.log(agentVersion());
      return 0;
    case undefined:
    case 'help':
    case '--help':
      console.log(USAGE);
      return command === undefined ? 2 : 0;
  }
  console.error(`cuttle: unknown command "${argv.join(' ')}"\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof CuttleError) {
      console.error(`cuttle: ${error.message} [${error.code}]`);
    } else {
      console.error(
        `cuttle: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
      );
    }
    process.exit(1);
  },
);
