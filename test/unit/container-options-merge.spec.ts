import assert from 'node:assert/strict';
import { toCreateOptions } from '../../images/step-container-spec.js';
import {
  OptionsInvalidError,
  mergeIntoCreateOptions,
  translateContainerOptions,
} from '../../images/container-options/index.js';

describe('container options: merging into the step container', function () {
  const work = '/home/cuttle/Work/20261122143005-T-1-1';
  const base = toCreateOptions({
    image: 'alpine:3',
    agentId: 'agent-1',
    taskId: 'T-1',
    workFolder: work,
    command: ['/bin/sh', `${work}/.cuttle/launch.sh`],
    env: ['STEP=1', 'SHARED=step'],
  });
  const merge = (options: string) =>
    mergeIntoCreateOptions(base, translateContainerOptions(options, { workFolder: work }));

  it('keeps the step’s command, entrypoint override, work-folder bind and log config', function () {
    const merged = merge(
      '--entrypoint /bin/bash --log-driver json-file -v /srv/a:/a --memory 1g --network none',
    );
    assert.deepEqual(merged.Cmd, base.Cmd);
    assert.deepEqual(merged.Entrypoint, ['']);
    assert.equal(merged.Image, 'alpine:3');
    assert.deepEqual(merged.HostConfig?.Binds, [`${work}:${work}`, '/srv/a:/a']);
    assert.deepEqual(merged.HostConfig?.LogConfig, { Type: 'none', Config: {} });
    assert.equal(merged.HostConfig?.AutoRemove, false);
    assert.equal(merged.HostConfig?.Memory, 1024 ** 3);
    assert.equal(merged.HostConfig?.NetworkMode, 'none');
    assert.equal(merged.Tty, false);
    assert.equal(merged.OpenStdin, false);
  });

  it('keeps the step’s init even when the options say --init=false', function () {
    assert.equal(base.HostConfig?.Init, true);
    assert.equal(merge('--init=false').HostConfig?.Init, true);
  });

  it('merges labels but never lets the options set dev.cuttle.*', function () {
    const merged = merge('--label team=ops --label dev.cuttle.agent=other --label dev.cuttle.x=y');
    assert.deepEqual(merged.Labels, {
      team: 'ops',
      'dev.cuttle.agent': 'agent-1',
      'dev.cuttle.task': 'T-1',
    });
  });

  it('adds variables, the options’ value winning for the same name', function () {
    assert.deepEqual(merge('-e SHARED=options -e NEW=1').Env, [
      'STEP=1',
      'SHARED=options',
      'NEW=1',
    ]);
  });

  it('lets --workdir and --user replace the step’s', function () {
    const merged = merge('-w /src -u 1000');
    assert.equal(merged.WorkingDir, '/src');
    assert.equal(merged.User, '1000');
    assert.equal(merge('').WorkingDir, work);
  });

  it('passes networking config and platform through', function () {
    const merged = merge('--network ci --network-alias a --platform linux/arm64');
    assert.deepEqual(merged.NetworkingConfig, { EndpointsConfig: { ci: { Aliases: ['a'] } } });
    assert.equal(merged.platform, 'linux/arm64');
  });

  describe('with the tool mounted from an image', function () {
    const withTool = toCreateOptions({
      image: 'alpine:3',
      agentId: 'agent-1',
      taskId: 'T-1',
      workFolder: work,
      command: ['/bin/sh', `${work}/.cuttle/launch.sh`],
      imageMounts: [{ image: 'cuttle-tool:1.0', target: '/cuttle/tool' }],
    });
    const mergeTool = (options: string) =>
      mergeIntoCreateOptions(withTool, translateContainerOptions(options, { workFolder: work }));

    it('keeps the tool’s image mount beside the options’ mounts', function () {
      const merged = mergeTool('--mount type=tmpfs,target=/scratch -v named:/cuttle');
      assert.deepEqual(merged.HostConfig?.Mounts, [
        { Type: 'image', Source: 'cuttle-tool:1.0', Target: '/cuttle/tool', ReadOnly: true },
        { Type: 'tmpfs', Target: '/scratch' },
      ]);
      assert.deepEqual(merged.HostConfig?.Binds, [`${work}:${work}`, 'named:/cuttle']);
    });

    const hiding: [options: string, hidden: string][] = [
      ['--mount type=tmpfs,target=/cuttle/tool', '/cuttle/tool'],
      ['--mount type=volume,target=/cuttle//tool/', '/cuttle/tool'],
      ['--mount type=volume,source=v,target=/cuttle/tool/bin', '/cuttle/tool'],
      ['-v named:/cuttle/tool:ro', '/cuttle/tool'],
      ['--tmpfs /cuttle/tool', '/cuttle/tool'],
      ['-v /cuttle/tool', '/cuttle/tool'],
      [`-v other:${work}`, work],
      [`--tmpfs ${work}/.cuttle`, work],
      [`--mount type=tmpfs,target=${work}`, work],
    ];
    for (const [options, hidden] of hiding) {
      it(`refuses ${options}: it would hide the step’s own mount at ${hidden}`, function () {
        assert.throws(
          () => mergeTool(options),
          (error: unknown) => {
            assert.ok(error instanceof OptionsInvalidError, String(error));
            assert.equal(error.code, 'options-invalid');
            assert.match(
              error.message,
              new RegExp(`would hide the step's own mount at ${hidden}: mount it elsewhere`),
            );
            return true;
          },
        );
      });
    }
  });

  it('does not modify the base options', function () {
    const before = JSON.stringify(base);
    merge('-e A=1 -v /x:/y --label a=b');
    assert.equal(JSON.stringify(base), before);
  });
});
