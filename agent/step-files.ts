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
import { settleAll } from './settle.js';
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
  const launcher = [
    '# Written by cuttle: runs the step script non-interactively in its work folder, with its',
    '# output in files that the agent follows.',
    `exec >>${shellQuote(files.stdout)} 2>>${shellQuote(files.stderr)} </dev/null`,
    `cd ${shellQuote(workFolder)} || exit 1`,
    `exec ${task.script.syntax === 'bash' ? 'bash --noprofile --norc' : 'sh'} ${shellQuote(bootstrap)}`,
    '',
  ].join('\n');
  // Readable by whatever user the image runs as; the 0700 home keeps other host users out. The
  // files do not depend on each other and are all written before the step starts: at once, as
  // one after another they were a few milliseconds of every step (docs/performance.md, round 7).
  const readable = { mode: 0o644 };
  // Settled, not raced: a failure is thrown only once no write is left that could land in a folder
  // being removed.
  await settleAll([
    writeFile(variables, variablesFileContent(task.variables), readable),
    writeFile(helpers, helpersScript(variables), readable),
    writeFile(script, task.script.body, readable),
    // Sourced, as Calamari's bootstrap does, so the helpers are functions of the script's own shell.
    writeFile(bootstrap, `. ${shellQuote(helpers)}\n. ${shellQuote(script)}\n`, readable),
    writeFile(files.launcher, launcher, readable),
    // Written to by the step, whichever user it runs as.
    ...[files.stdout, files.stderr].map(async (output) => {
      await writeFile(output, '');
      await chmod(output, 0o666);
    }),
  ]);
  return files;
}
