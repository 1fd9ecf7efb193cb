import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_OPTIONS_POLICY,
  OptionsForbiddenError,
  checkOptionsPolicy,
  translateContainerOptions,
  type OptionsPolicy,
} from '../../images/container-options/index.js';

describe('container options: worker policy', function () {
  let work = '';
  let allowedRoot = '';

  before(async function () {
    work = await realpath(await mkdtemp(join(tmpdir(), 'cuttle-policy-work-')));
    allowedRoot = await realpath(await mkdtemp(join(tmpdir(), 'cuttle-policy-allowed-')));
    await symlink('/', join(allowedRoot, 'root-link'));
    await mkdir(`${allowedRoot}-sibling`);
    await symlink(`${allowedRoot}-sibling`, join(allowedRoot, 'sibling-link'));
    await symlink('/nonexistent-cuttle-target/x', join(allowedRoot, 'dangling'));
  });

  after(async function () {
    await rm(work, { recursive: true, force: true });
    await rm(allowedRoot, { recursive: true, force: true });
    await rm(`${allowedRoot}-sibling`, { recursive: true, force: true });
  });

  function check(options: string, policy: Partial<OptionsPolicy> = {}): void {
    const translated = translateContainerOptions(options, { workFolder: work });
    checkOptionsPolicy(translated, { ...DEFAULT_OPTIONS_POLICY, ...policy });
  }

  function forbidden(options: string, policy: Partial<OptionsPolicy> = {}): OptionsForbiddenError {
    try {
      check(options, policy);
    } catch (error) {
      assert.ok(error instanceof OptionsForbiddenError, String(error));
      assert.equal(error.code, 'options-forbidden');
      return error;
    }
    assert.fail(`expected ${options} to be forbidden`);
  }

  it('allows ordinary options by default', function () {
    check(
      '-e A=1 -m 1g --cpus 2 --cap-add NET_BIND_SERVICE --cap-drop ALL --security-opt no-new-privileges --network bridge --tmpfs /tmp -v named:/data --mount type=volume,target=/v --read-only',
    );
  });

  it('refuses --privileged, naming the setting and flag that allow it', function () {
    const error = forbidden('--privileged');
    assert.equal(
      error.message,
      "Option --privileged is forbidden by this worker's policy: it gives the step full control of the worker. The worker's owner can allow it with allowPrivileged in the agent's configuration file, or --allow-privileged on `cuttle agent`.",
    );
    assert.equal(error.option, '--privileged');
    assert.equal(error.setting, 'allowPrivileged');
    check('--privileged', { allowPrivileged: true });
  });

  const namespaces = [
    '--network host',
    '--pid host',
    '--ipc host',
    '--uts host',
    '--userns host',
    '--cgroupns host',
    '--pid container:other',
    '--network container:other',
  ];
  for (const options of namespaces) {
    it(`refuses ${options} unless allowHostNamespaces`, function () {
      const error = forbidden(options);
      assert.equal(error.option, options);
      assert.equal(error.setting, 'allowHostNamespaces');
      assert.match(error.message, /--allow-host-namespaces/);
      check(options, { allowHostNamespaces: true });
    });
  }

  for (const cap of ['ALL', 'SYS_ADMIN', 'sys_module', 'CAP_SYS_PTRACE', 'NET_ADMIN', 'BPF']) {
    it(`refuses --cap-add ${cap} unless allowed`, function () {
      const error = forbidden(`--cap-add ${cap}`);
      assert.equal(error.setting, 'allowedCapabilities');
      assert.match(error.message, /--allow-capability CAP/);
      check(`--cap-add ${cap}`, { allowedCapabilities: [cap] });
      check(`--cap-add ${cap}`, { allowedCapabilities: ['ALL'] });
    });
  }

  it('names the normalised capability', function () {
    assert.equal(forbidden('--cap-add sys_admin').option, '--cap-add CAP_SYS_ADMIN');
    check('--cap-add sys_admin', { allowedCapabilities: ['CAP_SYS_ADMIN'] });
  });

  it('compares capability names after trimming blanks, as the docker client does', function () {
    assert.equal(forbidden("--cap-add ' sys_admin'").option, '--cap-add CAP_SYS_ADMIN');
    check("--cap-add ' sys_admin'", { allowedCapabilities: ['SYS_ADMIN'] });
    check('--cap-add sys_admin', { allowedCapabilities: [' sys_admin '] });
  });

  for (const options of [
    '--device /dev/fuse',
    '--gpus all',
    '--device vendor.com/gpu=0',
    '--device-cgroup-rule "c 1:3 rwm"',
  ]) {
    it(`refuses ${options} unless allowDevices`, function () {
      assert.equal(forbidden(options).setting, 'allowDevices');
      check(options, { allowDevices: true });
    });
  }

  for (const options of [
    '--security-opt seccomp=unconfined',
    '--security-opt seccomp:unconfined',
    '--security-opt apparmor=unconfined',
    '--security-opt label=disable',
    '--security-opt label:disable',
    '--security-opt systempaths=unconfined',
  ]) {
    it(`refuses ${options} unless allowUnconfined`, function () {
      const error = forbidden(options);
      assert.equal(error.option, options);
      assert.equal(error.setting, 'allowUnconfined');
      check(options, { allowUnconfined: true });
    });
  }

  it('refuses a custom seccomp profile unless allowUnconfined', async function () {
    await writeFile(join(work, 'profile.json'), '{"defaultAction":"SCMP_ACT_ALLOW"}');
    const error = forbidden('--security-opt seccomp=profile.json');
    assert.equal(error.option, '--security-opt seccomp=<profile>');
    assert.match(error.message, /a custom seccomp profile can lift all system call confinement/);
    check('--security-opt seccomp=profile.json', { allowUnconfined: true });
  });

  for (const options of [
    '--security-opt label=type:spc_t',
    '--security-opt label:type:spc_t',
    '--security-opt label=user:unconfined_u',
    '--security-opt label=role:unconfined_r',
    '--security-opt label=level:s0-s0:c0.c1023',
    '--security-opt label=filetype:container_runtime_exec_t',
    '--security-opt apparmor=unconfined-ish',
    '--security-opt apparmor:my-profile',
    '--security-opt writable-cgroups=true',
  ]) {
    it(`refuses ${options} unless allowUnconfined: it can lift the confinement`, function () {
      const error = forbidden(options);
      assert.equal(error.option, options);
      assert.equal(error.setting, 'allowUnconfined');
      assert.match(error.message, /--allow-unconfined/);
      check(options, { allowUnconfined: true });
    });
  }

  it('allows the security options that keep or tighten the default confinement', function () {
    check(
      '--security-opt seccomp=builtin --security-opt apparmor=docker-default --security-opt no-new-privileges ' +
        '--security-opt no-new-privileges=true --security-opt no-new-privileges:false --security-opt writable-cgroups=false',
    );
  });

  it('refuses --volumes-from unless allowVolumesFrom', function () {
    assert.equal(forbidden('--volumes-from other').setting, 'allowVolumesFrom');
    check('--volumes-from other', { allowVolumesFrom: true });
  });

  it('refuses every bind mount when no host path is allowed', function () {
    const error = forbidden('-v /srv/data:/data');
    assert.equal(
      error.message,
      "Option -v /srv/data:/data is forbidden by this worker's policy: this worker allows no bind mounts. The worker's owner can allow it with allowedBindMounts in the agent's configuration file, or --allow-bind-mount PATH on `cuttle agent`.",
    );
    assert.equal(
      forbidden('--mount type=bind,source=/srv/data,target=/d').setting,
      'allowedBindMounts',
    );
  });

  it('allows bind mounts under an allowed host path only', function () {
    const policy = { allowedBindMounts: [allowedRoot] };
    check(`-v ${allowedRoot}:/data`, policy);
    check(`-v ${allowedRoot}/sub/dir:/data:ro`, policy);
    check(`--mount type=bind,source=${allowedRoot},target=/d`, policy);
    assert.match(
      forbidden('-v /srv/data:/data', policy).message,
      /is not under an allowed host path/,
    );
    assert.match(
      forbidden(`-v ${allowedRoot}-other:/data`, policy).message,
      /not under an allowed/,
    );
    assert.match(forbidden(`-v ${allowedRoot}/../x:/data`, policy).message, /not under an allowed/);
  });

  it('follows symbolic links before deciding', function () {
    const error = forbidden(`-v ${allowedRoot}/root-link:/host`, {
      allowedBindMounts: [allowedRoot],
    });
    assert.match(error.message, /\/ is the root, a system folder or the Docker socket/);
  });

  it('follows symbolic links in the part of a path that exists, as dockerd creating the rest would', function () {
    const policy = { allowedBindMounts: [allowedRoot] };
    for (const options of [
      `-v ${allowedRoot}/root-link/root/.absent:/x`,
      `--mount type=bind,source=${allowedRoot}/root-link/etc/absent,target=/x`,
    ]) {
      assert.match(
        forbidden(options, policy).message,
        /\/(root|etc)\/\.?absent is the root, a system folder or the Docker socket/,
      );
    }
    // `${allowedRoot}-sibling` starts with the allowed path's text but is not inside it.
    assert.match(
      forbidden(`-v ${allowedRoot}/sibling-link/new/dir:/x`, policy).message,
      new RegExp(`${allowedRoot}-sibling/new/dir is not under an allowed host path`),
    );
    check(`-v ${allowedRoot}/new/dir:/x`, policy);
  });

  it('refuses a host path it cannot resolve, such as one through a dangling link', function () {
    const error = forbidden(`-v ${allowedRoot}/dangling/sub:/x`, {
      allowedBindMounts: [allowedRoot],
    });
    assert.match(error.message, /cannot be resolved/);
  });

  describe('paths the agent protects (its home, the Docker socket)', function () {
    let home = '';
    before(async function () {
      home = join(allowedRoot, 'agent-home');
      await mkdir(join(home, 'Work'), { recursive: true });
      await symlink(home, join(allowedRoot, 'home-link'));
    });

    it('refuses a bind inside or holding one, though an allowed prefix covers it', function () {
      const policy = { allowedBindMounts: [allowedRoot], protectedHostPaths: [home] };
      for (const options of [
        `-v ${home}/Work:/w`,
        `-v ${home}:/h`,
        `-v ${allowedRoot}:/r`,
        `-v ${allowedRoot}/home-link/Work/other-step:/w`,
        `-v ${allowedRoot}/root-link${home}/Work:/w`,
        `--mount type=bind,source=${home}/Work,target=/w`,
      ]) {
        const error = forbidden(options, policy);
        assert.equal(error.setting, 'allowedBindMounts');
        assert.match(
          error.message,
          new RegExp(`(is inside|holds) ${home}, which the agent protects`),
          options,
        );
      }
      check(`-v ${allowedRoot}/elsewhere:/e`, policy);
    });

    it('resolves the protected paths too, and refuses the folder holding a socket', function () {
      const socket = join(allowedRoot, 'run', 'docker.sock');
      const policy = {
        allowedBindMounts: [allowedRoot],
        protectedHostPaths: [join(allowedRoot, 'home-link'), socket],
      };
      assert.match(forbidden(`-v ${home}/Work:/w`, policy).message, /which the agent protects/);
      assert.match(forbidden(`-v ${socket}:/s`, policy).message, /which the agent protects/);
      assert.match(
        forbidden(`-v ${allowedRoot}/run:/s`, policy).message,
        /which the agent protects/,
      );
    });

    it('allows one when allowedBindMounts names it, or a folder inside it', function () {
      const protectedHostPaths = [home];
      check(`-v ${home}/Work/x:/w`, {
        allowedBindMounts: [allowedRoot, `${home}/Work`],
        protectedHostPaths,
      });
      check(`-v ${home}/Work:/w`, { allowedBindMounts: [home], protectedHostPaths });
      check(`-v ${home}:/h`, { allowedBindMounts: [home], protectedHostPaths });
      // Never a folder holding one: the step would get the whole home.
      assert.match(
        forbidden(`-v ${allowedRoot}:/r`, { allowedBindMounts: [allowedRoot], protectedHostPaths })
          .message,
        /holds .*, which the agent protects .*; mount a folder beside it instead/,
      );
      check(`-v ${allowedRoot}:/r`, { allowedBindMounts: [allowedRoot], protectedHostPaths: [] });
    });
  });

  it('refuses a bind of / unless / is allowed', function () {
    assert.equal(forbidden('-v /:/host').option, '-v /:/host');
    check('-v /:/host', { allowedBindMounts: ['/'] });
  });

  for (const path of [
    '/etc',
    '/var/run/docker.sock',
    '/run/docker.sock',
    '/proc',
    '/var',
    '/usr/lib',
  ]) {
    it(`refuses a bind of ${path} even when / is allowed, unless named`, function () {
      const error = forbidden(`-v ${path}:/host`, { allowedBindMounts: ['/'] });
      assert.match(error.message, /must be allowed by name/);
      check(`-v ${path}:/host`, { allowedBindMounts: [path] });
    });
  }

  it('allows what is inside a sensitive folder that is named', function () {
    check('-v /var/lib/docker/volumes:/v', { allowedBindMounts: ['/var'] });
    check(`-v ${allowedRoot}:/data`, { allowedBindMounts: ['/'] });
  });

  it('treats a local volume that binds a host folder as a bind mount', function () {
    const options =
      '--mount "type=volume,target=/x,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=/etc"';
    assert.equal(forbidden(options).setting, 'allowedBindMounts');
    check(options, { allowedBindMounts: ['/etc'] });
  });

  for (const o of ['rbind', 'bind,ro', 'ro,rbind', 'nosuid,bind,nodev']) {
    it(`treats a local volume with o=${o} as a bind mount of its device`, function () {
      const options = `--mount 'type=volume,target=/h,volume-opt=type=none,"volume-opt=o=${o}",volume-opt=device=/'`;
      const error = forbidden(options, { allowedBindMounts: [allowedRoot] });
      assert.equal(error.setting, 'allowedBindMounts');
      assert.match(error.message, /\/ is the root, a system folder or the Docker socket/);
      const inside = options.replace('device=/', `device=${allowedRoot}/root-link/etc/x`);
      assert.match(forbidden(inside, { allowedBindMounts: [allowedRoot] }).message, /\/etc\/x is/);
      check(options, { allowedBindMounts: ['/'] });
    });
  }

  for (const options of [
    '--mount type=volume,target=/d,volume-opt=type=ext4,volume-opt=device=/dev/sda1',
    '--mount type=volume,target=/d,volume-opt=type=ext4,volume-opt=device=/dev/sda1,volume-opt=o=ro',
    '--mount type=volume,target=/n,volume-opt=type=nfs,volume-opt=o=addr=10.0.0.1,volume-opt=device=:/export',
    '--mount type=volume,target=/o,volume-opt=type=overlay,volume-opt=o=lowerdir=/etc,volume-opt=device=overlay',
    // Not a bind for the kernel (the flag must be exact), so it is a file system mount.
    '--mount type=volume,target=/d,volume-opt=type=none,volume-opt=o=Bind,volume-opt=device=/etc',
  ]) {
    it(`refuses a local volume that mounts a file system unless allowDevices: ${options}`, function () {
      const error = forbidden(options);
      assert.equal(error.setting, 'allowDevices');
      assert.match(error.message, /makes the Docker engine mount .* on the worker, as root/);
      assert.match(
        error.message,
        /allowDevices in the agent's configuration file, or --allow-devices/,
      );
      check(options, { allowDevices: true });
    });
  }

  it('allows a local tmpfs volume, which mounts nothing of the host', function () {
    check(
      '--mount type=volume,target=/t,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-opt=o=size=64m',
    );
  });

  for (const options of [
    '--mount type=volume,source=share,target=/x,volume-driver=netshare',
    '--mount type=volume,target=/x,volume-driver=local-persist,volume-opt=mountpoint=/etc',
    '--volume-driver nfs -v host/export:/m',
    '--volume-driver nfs',
  ]) {
    it(`refuses a volume plugin unless allowDevices: ${options}`, function () {
      const error = forbidden(options);
      assert.equal(error.setting, 'allowDevices');
      assert.match(
        error.message,
        /a volume plugin may mount any host path, device or network share/,
      );
      check(options, { allowDevices: true });
    });
  }

  it('allows the local volume driver by name', function () {
    check(
      '--volume-driver local -v named:/n --mount type=volume,source=v,target=/v,volume-driver=local',
    );
  });
});
