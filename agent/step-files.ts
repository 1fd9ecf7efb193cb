/**
 * The files the agent writes into a step's work folder before it starts: the script, and a
 * launcher that sends the script's output to files the agent follows (see output-tail.ts).
 */
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Task } from '../protocol/index.js';
import { CONTROL_DIR } from '../workspace/index.js';

export interface StepFiles {
  launcher: string;
  stdout: string;
  stderr: string;
}

/** Quotes a value for a POSIX shell (single quotes; a quote becomes '\''). */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export async function writeStepFiles(workFolder: string, task: Task): Promise<StepFiles> {
  const control = join(workFolder, CONTROL_DIR);
  const files: StepFiles = {
    launcher: join(control, 'launch.sh'),
    stdout: join(control, 'stdout'),
    stderr: join(control, 'stderr'),
  };
  const script = join(control, 'script.sh');
  await writeFile(script, task.script.body, { mode: 0o644 });
  const launcher = [
    '# Written by cuttle: runs the step script non-interactively in its work folder, with its',
    '# output in files that the agent follows.',
    `exec >>${shellQuote(files.stdout)} 2>>${shellQuote(files.stderr)} </dev/null`,
    `cd ${shellQuote(workFolder)} || exit 1`,
    `exec ${task.script.syntax === 'bash' ? 'bash' : 'sh'} ${shellQuote(script)}`,
    '',
  ].join('\n');
  await writeFile(files.launcher, launcher, { mode: 0o644 });
  for (const output of [files.stdout, files.stderr]) {
    await writeFile(output, '');
    await chmod(output, 0o666);
  }
  return files;
}
