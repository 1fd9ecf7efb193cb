import assert from 'node:assert/strict';
import { toCreateOptions } from '../../images/step-container-spec.js';

describe('images: step container create options', function () {
  const base = {
    image: 'alpine:3',
    agentId: 'agent-1',
    taskId: 'T-1',
    workFolder: '/home/cuttle/Work/20261122143005-T-1-1',
    command: ['/bin/sh', '/home/cuttle/Work/20261122143005-T-1-1/.cuttle/launch.sh'],
  };

  it('overrides the entrypoint, mounts the work folder at the same path and labels the container', function () {
    const options = toCreateOptions(base);
    assert.deepEqual(options.Entrypoint, ['']);
    assert.deepEqual(options.Cmd, base.command);
    assert.equal(options.WorkingDir, base.workFolder);
    assert.deepEqual(options.Labels, { 'dev.cuttle.agent': 'agent-1', 'dev.cuttle.task': 'T-1' });
    assert.deepEqual(options.HostConfig?.Binds, [`${base.workFolder}:${base.workFolder}`]);
    assert.deepEqual(options.HostConfig?.LogConfig, { Type: 'none', Config: {} });
    assert.equal(options.HostConfig?.AutoRemove, false);
    assert.equal(options.Tty, false);
    assert.equal(options.OpenStdin, false);
    assert.deepEqual(options.Env, []);
    assert.equal('User' in options, false);
  });

  it('adds env, extra binds and user when given', function () {
    const options = toCreateOptions({
      ...base,
      env: ['A=1'],
      extraBinds: ['/opt/tools:/opt/tools:ro'],
      user: '1000:1000',
    });
    assert.deepEqual(options.Env, ['A=1']);
    assert.deepEqual(options.HostConfig?.Binds, [
      `${base.workFolder}:${base.workFolder}`,
      '/opt/tools:/opt/tools:ro',
    ]);
    assert.equal(options.User, '1000:1000');
  });

  it('mounts images read-only (a tool as an image, Engine API 1.48+), and nothing otherwise', function () {
    // Not run against an engine: the one here (20.10, API 1.41) cannot mount images.
    const options = toCreateOptions({
      ...base,
      imageMounts: [{ image: 'octopusdeploy/calamari:28.1.0', target: '/cuttle/tool' }],
    });
    assert.deepEqual(options.HostConfig?.Mounts, [
      {
        Type: 'image',
        Source: 'octopusdeploy/calamari:28.1.0',
        Target: '/cuttle/tool',
        ReadOnly: true,
      },
    ]);
    assert.equal('Mounts' in (toCreateOptions(base).HostConfig ?? {}), false);
  });
});
