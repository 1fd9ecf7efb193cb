/**
 * The files the agent writes into a step's work folder before it starts: the helpers, the task's
 * variables for get_octopusvariable, the script, and a launcher that sends the script's output to
 * files the agent follows (see output-tail.ts). All of it goes when the work folder is removed.
 */
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Task } from '../protocol/index.js';
import { CONTROL_DIR } from '../workspace/index.js';
import { helpersScript, variablesFileContent } from './script-helpers.js';
import { shellQuote } from './shell-quote.js';

export interface StepFiles {
  launcher: string;
  stdout: string;
  stderr: string;
}

/** Where a step's output files are, for a restarted agent that did not write them itself. */
export function stepOutputFiles(workFolder: string): { stdout: string; stderr: string } {
  const control = join(workFolder, CONTROL_DIR);
  return { stdout: join(control, 'stdout'), stderr: join(control, 'stderr') };
}

export async function writeStepFiles(workFolder: string, task: Task): Promise<StepFiles> {
  const control = join(workFolder, CONTROL_DIR);
  const files: StepFiles = {
    launcher: join(control, 'launch.sh'),
    stdout: join(control, 'stdout'),
    stderr: join(control, 'stderr'),
  };
  const script = join(control, 'script.sh');
  const helpers = join(control, 'helpers.sh');
  const variables = join(control, 'variables');
  const bootstrap = join(control, 'bootstrap.sh');
  // Readable by whatever user the image runs as; the 0700 home keeps other host users out.
  await writeFile(variables, variablesFileContent(task.variables), { mode: 0o644 });
  await writeFile(helpers, helpersScript(variables), { mode: 0o644 });
  await writeFile(script, task.script.body, { mode: 0o644 });
  // Sourced, as Calamari's bootstrap does, so the helpers are functions of the script's own shell.
  await writeFile(bootstrap, `. ${shellQuote(helpers)}\n. ${shellQuote(script)}\n`, {
    mode: 0o644,
  });
  const launcher = [
    '# Written by cuttle: runs the step script non-interactively in its work folder, with its',
    '# output in files that the agent follows.',
    `exec >>${shellQuote(files.stdout)} 2>>${shellQuote(files.stderr)} </dev/null`,
    `cd ${shellQuote(workFolder)} || exit 1`,
    `exec ${task.script.syntax === 'bash' ? 'bash --noprofile --norc' : 'sh'} ${shellQuote(bootstrap)}`,
    '',
  ].join('\n');
  await writeFile(files.launcher, launcher, { mode: 0o644 });
  for (const output of [files.stdout, files.stderr]) {
    await writeFile(output, '');
    await chmod(output, 0o666);
  }
  return files;
}
