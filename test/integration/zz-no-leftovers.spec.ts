/**
 * Runs last (files run in name order): after the whole suite, no container made by any agent is
 * left on the engine. Each test removes what it made; this catches the ones that did not.
 * Needs: a Docker engine.
 */
import assert from 'node:assert/strict';
import Docker from 'dockerode';

describe('after the whole suite', () => {
  it('leaves no container labelled by an agent', async () => {
    const left = await new Docker().listContainers({
      all: true,
      filters: { label: ['dev.cuttle.agent'] },
    });
    assert.deepEqual(
      left.map((c) => `${c.Id.slice(0, 12)} ${JSON.stringify(c.Labels)} ${c.State}`),
      [],
    );
  });
});
