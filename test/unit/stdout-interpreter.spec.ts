import assert from 'node:assert/strict';
import { Masker } from '../../agent/masker.js';
import { holdsServiceMessage, StdoutInterpreter } from '../../agent/stdout-interpreter.js';
import { TaskLog } from '../../agent/task-log.js';
import type { JournalInput } from '../../workspace/index.js';
import { logLines } from '../support/log-lines.js';

/** An interpreter writing through a TaskLog whose events the test reads. */
function interpreterOnLog(): {
  events: JournalInput[];
  log: TaskLog;
  interpreter: StdoutInterpreter;
} {
  const events: JournalInput[] = [];
  const masker = new Masker();
  const log = new TaskLog(async (body) => {
    events.push(body);
  }, masker);
  const interpreter = new StdoutInterpreter(
    log,
    masker,
    () => undefined,
    async () => undefined,
  );
  return { events, log, interpreter };
}

describe('StdoutInterpreter', () => {
  it('finds a line that starts a service message, wherever the first # is', () => {
    assert.equal(holdsServiceMessage('plain\nlines'), false);
    assert.equal(holdsServiceMessage("##octopus[setVariable name='a']"), true);
    assert.equal(holdsServiceMessage("a\n##octopus[setVariable name='a']"), true);
    assert.equal(holdsServiceMessage("# a comment\nb\n##octopus[mask value='x']\nc"), true);
    assert.equal(holdsServiceMessage("x #\n##octopus[mask value='x']"), true);
    assert.equal(holdsServiceMessage('#\n##octopus['), true);
    assert.equal(holdsServiceMessage("not at the start ##octopus[mask value='x']"), false);
    assert.equal(holdsServiceMessage('## a heading\n#octopus['), false);
  });

  it('acts on a service message in whole text after other lines with a #', async () => {
    const { events, interpreter } = interpreterOnLog();
    // Attribute values are base64, as Calamari writes them: QW5zd2Vy is Answer, NDI= is 42.
    const text = "# step 1\nfirst\n##octopus[setVariable name='QW5zd2Vy' value='NDI=']\nlast";
    await interpreter.text(text, text.length + 1);
    const variables = events.filter((e) => e.kind === 'variable');
    assert.deepEqual(
      variables.map((e) => e.kind === 'variable' && [e.name, e.value]),
      [['Answer', '42']],
    );
    const lines = events.flatMap((e) => logLines(e) ?? []);
    assert.deepEqual(lines, ['# step 1', 'first', 'last']);
  });

  it("keeps its variables and progress out of a long stderr line's pieces", async () => {
    const { events, log, interpreter } = interpreterOnLog();
    await log.partial('stderr', 'info', 'start of a long line', 20);
    // QW5zd2Vy is Answer, NDI= is 42, aGFsZg== is half.
    const lines = [
      "##octopus[setVariable name='QW5zd2Vy' value='NDI=']",
      "##octopus[progress percentage='NTA=' message='aGFsZg==']",
    ];
    const handled = interpreter.lines(lines, [52, 108]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await log.write('stderr', 'info', ['end of it']);
    await handled;
    assert.deepEqual(
      events.map((e) => (e.kind === 'log' ? `${e.stream}:${e.lines.join()}` : e.kind)),
      ['stderr:start of a long line', 'stderr:end of it', 'variable', 'progress'],
    );
  });
});
