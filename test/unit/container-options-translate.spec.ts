import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  OptionsInvalidError,
  translateContainerOptions,
  type TranslatedOptions,
} from '../../images/container-options/index.js';

describe('container options: translation', function () {
  let work = '';
  let outside = '';
  const translate = (options: string): TranslatedOptions =>
    translateContainerOptions(options, { workFolder: work });
  const refusal = (options: string): string => {
    try {
      translate(options);
    } catch (error) {
      assert.ok(error instanceof OptionsInvalidError, String(error));
      assert.equal(error.code, 'options-invalid');
      return error.message;
    }
    assert.fail(`expected ${options} to be refused`);
  };

  before(async function () {
    work = await realpath(await mkdtemp(join(tmpdir(), 'cuttle-opts-unit-')));
    outside = await realpath(await mkdtemp(join(tmpdir(), 'cuttle-opts-outside-')));
    await writeFile(join(work, 'vars.env'), '\uFEFF# c\n  A=1\nB=two words\nBARE\n\nC=\n');
    await writeFile(join(work, 'bad.env'), 'BAD KEY=1\n');
    await writeFile(join(work, 'labels.txt'), 'a=1\nb\n');
    await writeFile(join(outside, 'secret.env'), 'S=1\n');
    await writeFile(join(work, 'seccomp.json'), '{ "defaultAction": "SCMP_ACT_ERRNO" }\n');
  });

  after(async function () {
    await rm(work, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  describe('flag syntax (pflag)', function () {
    it('accepts --flag=value, --flag value, -xVALUE, -x=VALUE and -x VALUE', function () {
      for (const options of ['--env=A=1', '--env A=1', '-eA=1', '-e=A=1', '-e A=1']) {
        assert.deepEqual(translate(options).config.Env, ['A=1'], options);
      }
    });

    it('takes the next word as the value even when it starts with a dash', function () {
      assert.deepEqual(translate('-e -x=1').config.Env, ['-x=1']);
    });

    it('combines one-letter booleans with a value flag at the end', function () {
      assert.deepEqual(translate('-Pp 80').hostConfig.PortBindings, {
        '80/tcp': [{ HostIp: '', HostPort: '' }],
      });
      assert.equal(translate('-Pp 80').hostConfig.PublishAllPorts, true);
    });

    it('names the nearest known option for an unknown one', function () {
      assert.equal(
        refusal('--memroy 1g'),
        'Unknown option --memroy in Octopus.Action.Container.Options. Did you mean --memory?',
      );
      assert.equal(
        refusal('--netwrok host'),
        'Unknown option --netwrok in Octopus.Action.Container.Options. Did you mean --network?',
      );
      assert.match(refusal('--completely-unrelated'), /See docs\/container-options\.md/);
    });

    it('lists the one-letter options for an unknown one', function () {
      assert.match(
        refusal('-Pz'),
        /^Unknown option -z \(in -Pz\) in Octopus\.Action\.Container\.Options\. The one-letter options are -P -a -c -d -e -h -i -l -m -p -q -t -u -v -w; long options start with two dashes\.$/,
      );
    });

    it('says when a value is missing', function () {
      assert.equal(
        refusal('--memory'),
        'Option --memory needs a value (it sets HostConfig.Memory), but Octopus.Action.Container.Options ends after it.',
      );
      assert.match(refusal('-e'), /^Option -e needs a value/);
    });

    it('refuses words that are not options, with a hint for booleans', function () {
      assert.equal(
        refusal('--privileged false'),
        'Unexpected argument "false" in Octopus.Action.Container.Options: it may hold only options; the image and the command come from the step. --privileged takes no separate value: write --privileged=false to set it.',
      );
      assert.match(refusal('alpine sh'), /^Unexpected argument "alpine"/);
      assert.match(refusal('-- alpine'), /^Unexpected argument "alpine"/);
    });

    it('refuses bad syntax', function () {
      assert.match(refusal('---x'), /^Bad option syntax "---x"/);
    });
  });

  describe('options that would break the step', function () {
    const cases: [string, RegExp][] = [
      ['--rm', /cuttle removes the step container itself/],
      ['-d', /always runs step containers detached/],
      ['-it', /Option -i cannot be used.*non-interactively/],
      ['-t', /Option -t cannot be used/],
      ['-a stdout', /Option -a stdout cannot be used/],
      ['--name build', /cuttle names and labels step containers itself/],
      ['--detach-keys ctrl-x', /non-interactively/],
      ['--sig-proxy', /non-interactively/],
      ['--cidfile /tmp/x', /outside the step folder/],
      ['--pull always', /cuttle pulls the step image itself/],
      ['--use-api-socket', /Docker socket/],
      ['--cpu-count 2', /only supported by Docker daemons running on Windows/],
      ['--restart always', /a step container must not restart/],
    ];
    for (const [options, message] of cases) {
      it(`refuses ${options}`, function () {
        assert.match(refusal(options), message);
      });
    }

    it('accepts asking for the default (--rm=false, --restart no)', function () {
      assert.deepEqual(translate('--rm=false -t=false --restart no').hostConfig, {});
    });
  });

  describe('environment', function () {
    it('reads an env file inside the step folder, as the CLI does, dropping bare keys', function () {
      const translated = translate('--env-file vars.env -e B=override');
      assert.deepEqual(translated.config.Env, ['A=1', 'C=', 'B=override']);
      assert.deepEqual(translated.warnings, [
        "--env-file vars.env: BARE has no value and is left out; cuttle never copies the worker's environment into a step (write BARE=value).",
      ]);
    });

    it('accepts an absolute env-file path inside the step folder', function () {
      assert.deepEqual(translate(`--env-file ${join(work, 'vars.env')}`).config.Env, [
        'A=1',
        'B=two words',
        'C=',
      ]);
    });

    it('refuses an env file outside the step folder', function () {
      const path = join(outside, 'secret.env');
      assert.equal(
        refusal(`--env-file ${path}`),
        `Option --env-file ${path} in Octopus.Action.Container.Options: the env file must be inside the step's folder ${work} (cuttle reads no other files on the worker).`,
      );
      assert.match(
        refusal('--env-file ../x.env'),
        /cannot read the env file .*: it does not exist/,
      );
    });

    it('says what is wrong in an env file', function () {
      assert.equal(
        refusal('--env-file bad.env'),
        "Option --env-file bad.env in Octopus.Action.Container.Options: variable 'BAD KEY' contains whitespaces.",
      );
    });

    it('refuses -e KEY without a value rather than copying the worker environment', function () {
      assert.equal(
        refusal('-e HOME'),
        "Option -e HOME in Octopus.Action.Container.Options: it has no value: the docker CLI would copy HOME from the environment it runs in, and cuttle never passes the worker's environment to a step. Write HOME=value.",
      );
      assert.match(refusal('-e =x'), /invalid environment variable: =x/);
    });

    it('keeps the last value of a repeated variable', function () {
      assert.deepEqual(translate('-e A=1 -e B=2 -e A=3').config.Env, ['B=2', 'A=3']);
    });
  });

  describe('labels, identity and entrypoint', function () {
    it('translates labels and a label file, ignoring cuttle’s own', function () {
      const translated = translate(
        '--label-file labels.txt -l x -l y=2 --label dev.cuttle.task=evil',
      );
      assert.deepEqual(translated.config.Labels, { a: '1', x: '', y: '2' });
      assert.match(translated.warnings[0] ?? '', /dev\.cuttle\.task is ignored/);
    });

    it('translates user, workdir, hostname, stop settings', function () {
      assert.deepEqual(
        translate(
          '-u 1000:1000 -w /src -h box --domainname example.com --stop-signal SIGINT --stop-timeout 0x1e',
        ).config,
        {
          User: '1000:1000',
          WorkingDir: '/src',
          Hostname: 'box',
          Domainname: 'example.com',
          StopSignal: 'SIGINT',
          StopTimeout: 30,
        },
      );
      assert.match(refusal('-w src'), /the working directory must be an absolute path/);
      assert.equal(
        refusal('--stop-timeout soon'),
        "Option --stop-timeout soon in Octopus.Action.Container.Options: 'soon' is not an integer.",
      );
    });

    it('translates --entrypoint with a warning that the step still runs its command', function () {
      const translated = translate('--entrypoint /bin/bash');
      assert.deepEqual(translated.config.Entrypoint, ['/bin/bash']);
      assert.deepEqual(translated.warnings, [
        "--entrypoint /bin/bash is ignored: cuttle runs the step's script as the container's command, with no entrypoint.",
      ]);
    });
  });

  describe('volumes and mounts', function () {
    it('translates -v binds, anonymous and named volumes, and lists host folders', function () {
      const translated = translate('-v /srv/a:/a:ro -v ./cache:/cache -v /anon -v named:/n');
      assert.deepEqual(translated.hostConfig.Binds, [
        '/srv/a:/a:ro',
        `${work}/cache:/cache`,
        'named:/n',
      ]);
      assert.deepEqual(translated.config.Volumes, { '/anon': {} });
      assert.deepEqual(
        translated.bindMounts.map(({ hostPath, containerPath, readOnly }) => ({
          hostPath,
          containerPath,
          readOnly,
        })),
        [
          { hostPath: '/srv/a', containerPath: '/a', readOnly: true },
          { hostPath: `${work}/cache`, containerPath: '/cache', readOnly: false },
        ],
      );
    });

    it('sends the host path with symbolic links resolved, as checked', async function () {
      await symlink(outside, join(work, 'link'));
      await mkdir(join(outside, 'odd:name'));
      await symlink(join(outside, 'odd:name'), join(work, 'odd-link'));
      try {
        const translated = translate(
          '-v ./link/new/dir:/d:ro --mount type=bind,source=./link,target=/m',
        );
        assert.deepEqual(translated.hostConfig.Binds, [`${outside}/new/dir:/d:ro`]);
        assert.equal(translated.hostConfig.Mounts?.[0]?.Source, outside);
        assert.deepEqual(
          translated.bindMounts.map((m) => m.hostPath),
          [`${outside}/new/dir`, outside],
        );
        // In -v the engine would take the ':' of the resolved path for a separator.
        assert.match(refusal('-v ./odd-link:/d'), /resolves to .*odd:name, whose ':'/);
        translate('--mount type=bind,source=./odd-link,target=/d');
      } finally {
        await rm(join(work, 'link'));
        await rm(join(work, 'odd-link'));
      }
    });

    it('refuses malformed -v', function () {
      assert.equal(
        refusal('-v /a::/b'),
        'Option -v /a::/b in Octopus.Action.Container.Options: invalid spec: /a::/b: empty section between colons.',
      );
      assert.match(refusal('-v /a:/b:ro:x'), /too many colons/);
      assert.match(refusal('-v ""'), /invalid empty volume spec/);
      assert.match(refusal('-v ~/x:/x'), /unquoted ~/);
    });

    it('translates --mount of each type', function () {
      const translated = translate(
        '--mount type=bind,source=/srv/a,target=/a,readonly,bind-propagation=rslave ' +
          '--mount type=volume,source=v,target=/v,volume-nocopy,volume-label=k=v,volume-opt=type=tmpfs ' +
          '--mount type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1770',
      );
      assert.deepEqual(translated.hostConfig.Mounts, [
        {
          Type: 'bind',
          Source: '/srv/a',
          Target: '/a',
          ReadOnly: true,
          BindOptions: { Propagation: 'rslave' },
        },
        {
          Type: 'volume',
          Source: 'v',
          Target: '/v',
          VolumeOptions: {
            Labels: { k: 'v' },
            DriverConfig: { Options: { type: 'tmpfs' } },
            NoCopy: true,
          },
        },
        { Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 64 * 1024 ** 2, Mode: 0o1770 } },
      ]);
      assert.equal(translated.bindMounts.length, 1);
    });

    it('counts a local volume that binds a host device as a bind mount', function () {
      const translated = translate(
        '--mount "type=volume,target=/x,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=/etc"',
      );
      assert.equal(translated.bindMounts[0]?.hostPath, '/etc');
      const rbind = translate(
        `--mount 'type=volume,target=/h,volume-opt=type=none,"volume-opt=o=ro,rbind",volume-opt=device=${work}/../${work.split('/').pop() ?? ''}/new'`,
      );
      assert.deepEqual(
        rbind.bindMounts.map(({ hostPath, containerPath }) => ({ hostPath, containerPath })),
        [{ hostPath: `${work}/new`, containerPath: '/h' }],
      );
      assert.equal(
        rbind.hostConfig.Mounts?.[0]?.VolumeOptions?.DriverConfig?.Options?.device,
        `${work}/new`,
        'the engine is sent the resolved device',
      );
      assert.match(
        refusal(
          '--mount type=volume,target=/x,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=etc',
        ),
        /needs an absolute host path as its device/,
      );
    });

    it('says what is wrong with a --mount', function () {
      assert.equal(
        refusal('--mount type=bind,source=/a'),
        'Option --mount type=bind,source=/a in Octopus.Action.Container.Options: target is required.',
      );
      assert.match(
        refusal('--mount type=bind,target=/x,bogus=1'),
        /unexpected key 'bogus' in 'bogus=1'/,
      );
      assert.match(
        refusal('--mount type=tmpfs,target=/x,tmpfs-size=big'),
        /invalid value for tmpfs-size: big/,
      );
      assert.match(
        refusal('--mount type=tmpfs,target=/x,volume-nocopy'),
        /cannot mix 'volume-\*' options with mount type 'tmpfs'/,
      );
      assert.match(
        refusal(`--mount 'type=bind,target=/x,"src=/a'`),
        /extraneous or missing " in quoted-field/,
      );
      assert.match(refusal('--mount type=bind,source=rel,target=/x'), /absolute source path/);
    });

    it('translates --tmpfs, --read-only, --volumes-from and --storage-opt', function () {
      assert.deepEqual(
        translate(
          '--tmpfs /run:rw,size=64m --tmpfs /tmp --read-only --volumes-from c1:ro --storage-opt size=1G',
        ).hostConfig,
        {
          Tmpfs: { '/run': 'rw,size=64m', '/tmp': '' },
          ReadonlyRootfs: true,
          VolumesFrom: ['c1:ro'],
          StorageOpt: { size: '1G' },
        },
      );
      assert.match(refusal('--storage-opt size'), /invalid storage option \(write key=value\)/);
    });
  });

  describe('networking and ports', function () {
    it('translates networks and aliases on a user-defined network', function () {
      const translated = translate(
        '--network ci --network-alias a --ip 10.0.0.2 --mac-address 02:42:ac:11:00:02',
      );
      assert.equal(translated.hostConfig.NetworkMode, 'ci');
      assert.deepEqual(translated.networkingConfig, {
        EndpointsConfig: { ci: { Aliases: ['a'], IPAMConfig: { IPv4Address: '10.0.0.2' } } },
      });
      assert.equal(translated.config.MacAddress, '02:42:ac:11:00:02');
    });

    it('translates the long --network syntax', function () {
      assert.deepEqual(
        translate('--network name=ci,alias=x,alias=y,driver-opt=k=v').networkingConfig,
        {
          EndpointsConfig: { ci: { Aliases: ['x', 'y'], DriverOpts: { k: 'v' } } },
        },
      );
    });

    it('refuses aliases without a user-defined network, and conflicts', function () {
      assert.match(
        refusal('--network-alias x'),
        /network-scoped aliases are only supported for user-defined networks/,
      );
      assert.match(
        refusal('--network name=ci,alias=x --network-alias y'),
        /cannot specify both --network-alias and per-network alias/,
      );
      assert.match(
        refusal('--network host --network ci'),
        /cannot attach both user-defined and non-user-defined/,
      );
    });

    it('translates hosts and DNS like the CLI', function () {
      assert.deepEqual(
        translate(
          '--add-host a=10.0.0.1 --add-host b:[::1] --add-host gw:host-gateway --dns 0:0:0:0:0:0:0:1 --dns-search example.com --dns-opt ndots:2',
        ).hostConfig,
        {
          ExtraHosts: ['a:10.0.0.1', 'b:::1', 'gw:host-gateway'],
          Dns: ['::1'],
          DnsSearch: ['example.com'],
          DnsOptions: ['ndots:2'],
        },
      );
      assert.match(refusal('--add-host nocolon'), /bad format for add-host: "nocolon"/);
      assert.match(refusal('--add-host a:not-ip'), /invalid IP address in add-host: "not-ip"/);
      assert.match(refusal('--dns 1.2.3'), /IP address is not correctly formatted: 1.2.3/);
      assert.match(refusal('--dns-search -bad-'), /-bad- is not a valid domain/);
      assert.match(refusal('--mac-address 02:42'), /02:42 is not a valid mac address/);
    });

    it('translates published and exposed ports', function () {
      const translated = translate(
        '-p 8080:80 -p 127.0.0.1:9000-9001:90-91/udp -p 3000-3010:3000 -p [::1]:53:53 --expose 7000-7001 -p published=81,target=8081',
      );
      assert.deepEqual(translated.hostConfig.PortBindings, {
        '80/tcp': [{ HostIp: '', HostPort: '8080' }],
        '90/udp': [{ HostIp: '127.0.0.1', HostPort: '9000' }],
        '91/udp': [{ HostIp: '127.0.0.1', HostPort: '9001' }],
        '3000/tcp': [{ HostIp: '', HostPort: '3000-3010' }],
        '53/tcp': [{ HostIp: '::1', HostPort: '53' }],
        '8081/tcp': [{ HostIp: '', HostPort: '81' }],
      });
      assert.deepEqual(Object.keys(translated.config.ExposedPorts ?? {}).sort(), [
        '3000/tcp',
        '53/tcp',
        '7000/tcp',
        '7001/tcp',
        '80/tcp',
        '8081/tcp',
        '90/udp',
        '91/udp',
      ]);
    });

    it('says what is wrong with a port', function () {
      assert.equal(
        refusal('-p 80:http'),
        'Option -p 80:http in Octopus.Action.Container.Options: invalid containerPort: http.',
      );
      assert.match(refusal('-p 80/ftp'), /invalid proto: ftp/);
      assert.match(refusal('-p 1.2.3:80:80'), /invalid IP address: 1.2.3/);
      assert.match(refusal('-p 80-81:90-92'), /invalid ranges specified/);
      assert.match(refusal('--expose 80:80'), /invalid port format for --expose: 80:80/);
      assert.match(refusal('--expose 90-80'), /invalid range format for --expose/);
    });
  });

  describe('resources', function () {
    it('translates sizes, CPUs and limits', function () {
      assert.deepEqual(
        translate(
          '-m 256m --memory-swap -1 --memory-reservation 1g --memory-swappiness 0 --cpus 1.5 -c 512 --cpuset-cpus 0-1 --cpu-period 100000 --cpu-quota 50000 --pids-limit 100 --shm-size 1.5g --oom-kill-disable --oom-score-adj -500 --blkio-weight 300 --ulimit nproc=10 --ulimit nofile=1024:2048 --ulimit nproc=20',
        ).hostConfig,
        {
          Memory: 256 * 1024 ** 2,
          MemorySwap: -1,
          MemoryReservation: 1024 ** 3,
          MemorySwappiness: 0,
          NanoCpus: 1_500_000_000,
          CpuShares: 512,
          CpusetCpus: '0-1',
          CpuPeriod: 100000,
          CpuQuota: 50000,
          PidsLimit: 100,
          ShmSize: 1.5 * 1024 ** 3,
          OomKillDisable: true,
          OomScoreAdj: -500,
          BlkioWeight: 300,
          Ulimits: [
            { Name: 'nofile', Soft: 1024, Hard: 2048 },
            { Name: 'nproc', Soft: 20, Hard: 20 },
          ],
        },
      );
    });

    it('translates block IO device limits', function () {
      assert.deepEqual(
        translate(
          '--blkio-weight-device /dev/sda:200 --device-read-bps /dev/sda:1mb --device-write-iops /dev/sda:100',
        ).hostConfig,
        {
          BlkioWeightDevice: [{ Path: '/dev/sda', Weight: 200 }],
          BlkioDeviceReadBps: [{ Path: '/dev/sda', Rate: 1024 ** 2 }],
          BlkioDeviceWriteIOps: [{ Path: '/dev/sda', Rate: 100 }],
        },
      );
      assert.match(refusal('--blkio-weight-device /dev/sda:5'), /invalid weight for device/);
      assert.match(refusal('--device-read-bps sda:1mb'), /bad format for device path: sda:1mb/);
    });

    it('says exactly what is wrong with a bad size or number', function () {
      assert.equal(
        refusal('--memory 12x'),
        "Option --memory 12x in Octopus.Action.Container.Options: invalid size '12x': unknown unit 'x' (use b, k, m, g, t or p, optionally followed by b or ib).",
      );
      assert.equal(
        refusal('-m=lots'),
        "Option -m=lots in Octopus.Action.Container.Options: invalid size 'lots': it has no number.",
      );
      assert.equal(
        refusal('--cpus=1.5.1'),
        "Option --cpus=1.5.1 in Octopus.Action.Container.Options: '1.5.1' is not a number of CPUs (write e.g. 1.5).",
      );
      assert.match(refusal('--memory-swappiness 101'), /Valid memory swappiness range is 0-100/);
      assert.match(
        refusal('--ulimit nofile=2048:1024'),
        /soft limit must be less than or equal to hard limit: 2048 > 1024/,
      );
      assert.match(refusal('--ulimit bogus=1'), /invalid ulimit type: bogus/);
      assert.match(refusal('--ulimit nofile'), /invalid ulimit argument: nofile/);
      assert.match(refusal('--blkio-weight 70000'), /'70000' is out of range \(0 to 65535\)/);
    });
  });

  describe('security and devices', function () {
    it('normalises capabilities as the docker client does', function () {
      const host = translate(
        '--cap-add net_admin --cap-add CAP_SYS_TIME --cap-add NET_ADMIN --cap-drop all',
      ).hostConfig;
      assert.deepEqual(host.CapAdd, ['CAP_NET_ADMIN', 'CAP_SYS_TIME']);
      assert.deepEqual(host.CapDrop, ['ALL']);
    });

    it('trims blanks around capability names, as the docker client does', function () {
      const host = translate(
        "--cap-add ' sys_admin' --cap-add 'net_admin\t' --cap-drop ' all '",
      ).hostConfig;
      assert.deepEqual(host.CapAdd, ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN']);
      assert.deepEqual(host.CapDrop, ['ALL']);
    });

    it('translates security options, reading a seccomp profile from the step folder', function () {
      const host = translate(
        '--security-opt no-new-privileges --security-opt label:disable --security-opt seccomp=seccomp.json --security-opt systempaths=unconfined',
      ).hostConfig;
      assert.deepEqual(host.SecurityOpt, [
        'no-new-privileges',
        'label:disable',
        'seccomp={"defaultAction":"SCMP_ACT_ERRNO"}',
      ]);
      assert.deepEqual(host.MaskedPaths, []);
      assert.deepEqual(host.ReadonlyPaths, []);
      assert.match(refusal('--security-opt seccomp'), /invalid --security-opt: "seccomp"/);
      assert.match(
        refusal(`--security-opt seccomp=${join(outside, 'secret.env')}`),
        /must be inside the step's folder/,
      );
    });

    it('translates and validates namespace modes', function () {
      assert.deepEqual(
        translate(
          '--privileged --userns host --pid container:x --ipc shareable --uts host --cgroupns private',
        ).hostConfig,
        {
          Privileged: true,
          UsernsMode: 'host',
          PidMode: 'container:x',
          IpcMode: 'shareable',
          UTSMode: 'host',
          CgroupnsMode: 'private',
        },
      );
      assert.equal(
        refusal('--pid bogus'),
        'Option --pid bogus in Octopus.Action.Container.Options: --pid: invalid PID mode (use host or container:<name|id>).',
      );
      assert.match(
        refusal('--cgroupns other'),
        /--cgroupns: invalid CGROUP mode \(use host or private\)/,
      );
    });

    it('translates devices, CDI devices and GPUs', function () {
      const host = translate(
        '--device /dev/fuse --device /dev/sda:/dev/xvda:r --device vendor.com/gpu=0 --gpus all --gpus \'"device=0,1"\' --device-cgroup-rule "c 1:3 rwm"',
      ).hostConfig;
      assert.deepEqual(host.Devices, [
        { PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' },
        { PathOnHost: '/dev/sda', PathInContainer: '/dev/xvda', CgroupPermissions: 'r' },
      ]);
      assert.deepEqual(host.DeviceRequests, [
        { Count: -1, Options: {}, Capabilities: [['gpu']] },
        { DeviceIDs: ['0', '1'], Options: {}, Capabilities: [['gpu']] },
        { Driver: 'cdi', DeviceIDs: ['vendor.com/gpu=0'] },
      ]);
      assert.deepEqual(host.DeviceCgroupRules, ['c 1:3 rwm']);
      assert.match(refusal('--device /dev/sda:relative'), /relative is not an absolute path/);
      assert.match(refusal('--device /dev/a:/dev/b:xyz'), /bad mode specified: xyz/);
      assert.match(refusal('--gpus count=many'), /invalid count \(many\)/);
      assert.match(refusal('--device-cgroup-rule "x 1:3 rwm"'), /invalid device cgroup format/);
    });
  });

  describe('health checks and the rest', function () {
    it('translates health options', function () {
      assert.deepEqual(
        translate(
          '--health-cmd "curl -f localhost" --health-interval 30s --health-timeout 5s --health-retries 3 --health-start-period 1m',
        ).config.Healthcheck,
        {
          Test: ['CMD-SHELL', 'curl -f localhost'],
          Interval: 30e9,
          Timeout: 5e9,
          StartPeriod: 60e9,
          Retries: 3,
        },
      );
      assert.deepEqual(translate('--no-healthcheck').config.Healthcheck, { Test: ['NONE'] });
      assert.match(
        refusal('--no-healthcheck --health-retries 2'),
        /--no-healthcheck conflicts with --health-\* options/,
      );
      assert.match(refusal('--health-interval -1s'), /--health-interval cannot be negative/);
      assert.equal(
        refusal('--health-timeout 5'),
        "Option --health-timeout 5 in Octopus.Action.Container.Options: invalid duration '5' (write e.g. 30s, 1m30s or 500ms; units ns us ms s m h).",
      );
    });

    it('translates init, sysctls, runtime, platform and log settings (with a warning)', function () {
      const translated = translate(
        '--init --sysctl net.ipv4.ip_forward=1 --runtime runc --isolation default --platform linux/arm64 --log-driver json-file --log-opt max-size=10m',
      );
      assert.deepEqual(translated.hostConfig, {
        Init: true,
        Sysctls: { 'net.ipv4.ip_forward': '1' },
        Runtime: 'runc',
        Isolation: 'default',
        LogConfig: { Type: 'json-file', Config: { 'max-size': '10m' } },
      });
      assert.equal(translated.platform, 'linux/arm64');
      assert.match(
        translated.warnings[0] ?? '',
        /--log-driver json-file --log-opt max-size=10m ignored/,
      );
      assert.equal(translate('--init=false').hostConfig.Init, false);
      assert.match(
        refusal('--sysctl kernel.hostname=x'),
        /sysctl 'kernel.hostname=x' is not allowed/,
      );
      assert.match(
        refusal('--log-driver none --log-opt a=b'),
        /invalid logging opts for driver none/,
      );
    });
  });
});
