import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serviceCommand, SERVICE_USAGE } from '../../agent/commands/service-command.js';
import { spawnExec, type ExecResult, type ServiceHost } from '../../agent/service/host.js';
import { DEFAULT_UNIT_OPTIONS, renderUnit } from '../../agent/service/unit.js';
import { CuttleError } from '../../protocol/index.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const COMMAND = ['/usr/bin/node', '/usr/lib/node_modules/cuttle/dist/agent/cli.js'];
const SETTINGS = ['--server', 'wss://deploy.example.com/agent', '--token', 's3cret-t0ken'];
const isRoot = process.geteuid?.() === 0;

const ok = (stdout = ''): ExecResult => ({ code: 0, stdout, stderr: '' });
const notFound: ExecResult = { code: 2, stdout: '', stderr: '' };

/**
 * The users, groups and systemd of a pretend machine: answers getent, id, useradd, usermod, userdel
 * and systemctl as the real ones do, and records every call. `passThrough` sends user commands to
 * the real machine instead (systemctl is always pretend: there is no running systemd here).
 */
class FakeSystem {
  readonly calls: string[][] = [];
  readonly users = new Map<string, { uid: number; home: string; groups: string[] }>();
  readonly groups = new Set(['root', 'docker']);
  enabled = false;
  active = false;
  #nextUid = 4242;

  constructor(readonly passThrough = false) {}

  /** Calls that change something (not the getent, id and is-* queries). */
  get changes(): string[] {
    return this.calls
      .filter(
        ([program, verb]) =>
          program !== 'getent' &&
          program !== 'id' &&
          !(program === 'systemctl' && (verb === 'is-enabled' || verb === 'is-active')),
      )
      .map((argv) => argv.join(' '));
  }

  exec = async (argv: readonly string[]): Promise<ExecResult> => {
    this.calls.push([...argv]);
    const [program, ...args] = argv;
    if (program === 'systemctl') return this.#systemctl(args);
    if (this.passThrough) return spawnExec(argv);
    const name = args[args.length - 1] ?? '';
    const user = this.users.get(name);
    switch (program) {
      case 'getent':
        if (args[0] === 'group')
          return this.groups.has(args[1] ?? '') ? ok(`${args[1]}:x:1:`) : notFound;
        return user === undefined
          ? notFound
          : ok(
              `${name}:x:${user.uid}:${user.uid}:cuttle worker agent:${user.home}:/usr/sbin/nologin\n`,
            );
      case 'id':
        return user === undefined
          ? { code: 1, stdout: '', stderr: `id: '${name}': no such user` }
          : ok(`${user.groups.join(' ')}\n`);
      case 'useradd': {
        const home = args[args.indexOf('--home-dir') + 1] ?? '';
        const groups = args.includes('--groups') ? (args[args.indexOf('--groups') + 1] ?? '') : '';
        this.users.set(name, {
          uid: this.#nextUid++,
          home,
          groups: [name, ...groups.split(',').filter(Boolean)],
        });
        return ok();
      }
      case 'usermod':
        user?.groups.push(args[args.indexOf('--groups') + 1] ?? '');
        return ok();
      case 'userdel':
        this.users.delete(name);
        return ok();
      default:
        return { code: 127, stdout: '', stderr: `${program}: not faked` };
    }
  };

  #systemctl(args: string[]): ExecResult {
    const [verb, ...rest] = args;
    const now = rest.includes('--now');
    switch (verb) {
      case 'is-enabled':
        return this.enabled ? ok('enabled\n') : { code: 1, stdout: 'disabled\n', stderr: '' };
      case 'is-active':
        return this.active ? ok('active\n') : { code: 3, stdout: 'inactive\n', stderr: '' };
      case 'enable':
        this.enabled = true;
        if (now) this.active = true;
        return ok();
      case 'disable':
        this.enabled = false;
        if (now) this.active = false;
        return ok();
      case 'start':
      case 'restart':
        this.active = true;
        return ok();
      case 'stop':
        this.active = false;
        return ok();
      default:
        return ok();
    }
  }
}

interface Run {
  code: number;
  out: string[];
  err: string[];
}

async function makeRoot(options: { systemd?: boolean } = {}): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'cuttle-service-'));
  if (options.systemd !== false) await mkdir(join(root, 'run/systemd/system'), { recursive: true });
  return root;
}

async function service(
  args: string[],
  host: Partial<ServiceHost> & { root: string },
  system: FakeSystem,
): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await serviceCommand(args, {
    host: { exec: system.exec, isRoot: true, ...host },
    env: {},
    command: COMMAND,
    out: (line) => out.push(line),
    err: (line) => err.push(line),
  });
  return { code, out, err };
}

async function modeOf(path: string): Promise<{ mode: number; uid: number; gid: number }> {
  const stats = await stat(path);
  return { mode: stats.mode & 0o7777, uid: stats.uid, gid: stats.gid };
}

/** Every file under a folder with its mode and content, to show a dry run changed nothing. */
async function snapshot(root: string): Promise<string> {
  return execFileSync('find', [root, '-printf', '%p %m %U %s\\n'], { encoding: 'utf8' });
}

describe('cuttle service', () => {
  const roots: string[] = [];
  const tempRoot = async (options?: { systemd?: boolean }): Promise<string> => {
    const root = await makeRoot(options);
    roots.push(root);
    return root;
  };
  after(async () => {
    for (const root of roots) await rm(root, { recursive: true, force: true });
  });

  describe('install', () => {
    before(function () {
      if (!isRoot) this.skip(); // chown to the service user needs root
    });

    it('--dry-run prints every action, the unit and the settings (token redacted), and does nothing', async () => {
      const root = await tempRoot();
      const system = new FakeSystem();
      const before = await snapshot(root);
      const run = await service(['install', ...SETTINGS, '--dry-run'], { root }, system);
      assert.equal(run.code, 0, run.err.join('\n'));
      const actions = run.out.filter((line) => line.startsWith('would '));
      assert.deepEqual(actions, [
        'would create system user cuttle (home /var/lib/cuttle, no login shell, groups docker)',
        'would create folder /var/lib/cuttle (0700, owner cuttle)',
        'would create folder /etc/cuttle (0755, owner root)',
        'would write /etc/cuttle/agent.json (0600, owner cuttle)',
        'would create folder /etc/systemd/system (0755, owner root)',
        'would write /etc/systemd/system/cuttle-agent.service (0644, owner root)',
        'would run systemctl daemon-reload',
        'would run systemctl enable --now cuttle-agent.service',
      ]);
      assert.equal(run.out[0], 'dry run: 8 actions, none done');
      const text = run.out.join('\n');
      assert.match(text, /^ {6}"token": "<redacted>"$/m);
      assert.match(
        text,
        /^ {4}ExecStart=\/usr\/bin\/node \/usr\/lib\/node_modules\/cuttle\/dist\/agent\/cli\.js agent --config \/etc\/cuttle\/agent\.json --log-format json$/m,
      );
      assert.doesNotMatch(text, /s3cret/);
      assert.deepEqual(system.changes, []);
      assert.equal(await snapshot(root), before);
    });

    it('installs into a root: user, home 0700, settings 0600 holding the token, unit, enable --now; a second run changes nothing', async () => {
      const root = await tempRoot();
      const system = new FakeSystem();
      const first = await service(['install', ...SETTINGS, '--capacity', '3'], { root }, system);
      assert.equal(first.code, 0, first.err.join('\n'));
      assert.deepEqual(system.changes, [
        'useradd --system --user-group --home-dir /var/lib/cuttle --no-create-home --shell /usr/sbin/nologin --comment cuttle worker agent --groups docker cuttle',
        'systemctl daemon-reload',
        'systemctl enable --now cuttle-agent.service',
      ]);
      assert.match(
        first.out.at(-1) ?? '',
        /^installed: cuttle-agent\.service is enabled and running as cuttle/,
      );
      const uid = system.users.get('cuttle')?.uid ?? -1;
      assert.deepEqual(await modeOf(join(root, 'var/lib/cuttle')), { mode: 0o700, uid, gid: uid });
      assert.deepEqual(await modeOf(join(root, 'etc/cuttle/agent.json')), {
        mode: 0o600,
        uid,
        gid: uid,
      });
      assert.deepEqual(await modeOf(join(root, 'etc/systemd/system/cuttle-agent.service')), {
        mode: 0o644,
        uid: 0,
        gid: 0,
      });
      // Only what differs from the defaults is written, so later defaults apply.
      assert.deepEqual(JSON.parse(await readFile(join(root, 'etc/cuttle/agent.json'), 'utf8')), {
        server: 'wss://deploy.example.com/agent',
        token: 's3cret-t0ken',
        capacity: 3,
      });
      assert.equal(
        await readFile(join(root, 'etc/systemd/system/cuttle-agent.service'), 'utf8'),
        renderUnit({ ...DEFAULT_UNIT_OPTIONS, command: COMMAND }),
      );
      assert.ok(!existsSync(join(root, 'etc/cuttle/agent.json.cuttle-new')));

      const files = await snapshot(root);
      system.calls.length = 0;
      const second = await service(['install', ...SETTINGS, '--capacity', '3'], { root }, system);
      assert.equal(second.code, 0);
      assert.deepEqual(second.out, [
        'nothing to change: cuttle-agent.service is installed, enabled and running as cuttle with these settings',
      ]);
      assert.deepEqual(system.changes, []);
      assert.equal(await snapshot(root), files);

      // Without settings, it re-reads the installed ones: still nothing to change.
      const bare = await service(['install'], { root }, system);
      assert.deepEqual(bare.out, [
        'using the settings in /etc/cuttle/agent.json',
        'nothing to change: cuttle-agent.service is installed, enabled and running as cuttle with these settings',
      ]);
    });

    it('repairs drift and restarts the running agent when its settings or unit change', async () => {
      const root = await tempRoot();
      const system = new FakeSystem();
      assert.equal((await service(['install', ...SETTINGS], { root }, system)).code, 0);
      await chmod(join(root, 'etc/cuttle/agent.json'), 0o644);
      await chmod(join(root, 'var/lib/cuttle'), 0o755);
      // As if `cuttle agent` had run as root with this home before.
      await mkdir(join(root, 'var/lib/cuttle/Journal/t1'), { recursive: true });
      await writeFile(join(root, 'var/lib/cuttle/agent-id'), 'a1\n');
      await chown(join(root, 'var/lib/cuttle'), 0, 0);
      await writeFile(join(root, 'etc/systemd/system/cuttle-agent.service'), '[Unit]\n');
      system.calls.length = 0;
      const repair = await service(['install', ...SETTINGS], { root }, system);
      assert.deepEqual(repair.out.slice(0, -1), [
        'set the mode of /var/lib/cuttle to 0700',
        'give /var/lib/cuttle and everything in it to cuttle',
        'set the mode of /etc/cuttle/agent.json to 0600',
        'rewrite /etc/systemd/system/cuttle-agent.service (0644, owner root)',
        'run systemctl daemon-reload',
        'run systemctl restart cuttle-agent.service (running steps get the grace period first)',
      ]);
      assert.equal((await modeOf(join(root, 'etc/cuttle/agent.json'))).mode, 0o600);
      assert.equal((await modeOf(join(root, 'var/lib/cuttle'))).mode, 0o700);
      const uid = system.users.get('cuttle')?.uid ?? -1;
      for (const path of ['var/lib/cuttle', 'var/lib/cuttle/agent-id', 'var/lib/cuttle/Journal/t1'])
        assert.equal((await modeOf(join(root, path))).uid, uid, path);

      // A longer grace period: new settings, and a unit whose stop timeout outlasts it.
      system.calls.length = 0;
      const longer = await service(
        ['install', ...SETTINGS, '--grace-seconds', '1800'],
        { root },
        system,
      );
      assert.deepEqual(longer.out.slice(0, -1), [
        'rewrite /etc/cuttle/agent.json (0600, owner cuttle)',
        'rewrite /etc/systemd/system/cuttle-agent.service (0644, owner root)',
        'run systemctl daemon-reload',
        'run systemctl restart cuttle-agent.service (running steps get the grace period first)',
      ]);
      const unit = await readFile(join(root, 'etc/systemd/system/cuttle-agent.service'), 'utf8');
      assert.match(unit, /^TimeoutStopSec=1860$/m);

      // Stopped by hand: install starts it again, and changes nothing else.
      system.active = false;
      system.calls.length = 0;
      const start = await service(
        ['install', ...SETTINGS, '--grace-seconds', '1800'],
        { root },
        system,
      );
      assert.deepEqual(start.out.slice(0, -1), ['run systemctl start cuttle-agent.service']);
    });

    it('takes settings from --config, and adds an existing user to the docker group', async () => {
      const root = await tempRoot();
      const system = new FakeSystem();
      system.users.set('deploy', { uid: 5000, home: '/srv/deploy', groups: ['deploy'] });
      const file = join(root, 'given.json');
      await writeFile(
        file,
        JSON.stringify({
          server: 'wss://d.example.com/a',
          token: 'tok',
          home: '/srv/deploy',
          logLevel: 'debug',
        }),
      );
      const run = await service(
        ['install', '--config', file, '--user', 'deploy', '--name', 'w1'],
        { root },
        system,
      );
      assert.equal(run.code, 0, run.err.join('\n'));
      assert.deepEqual(system.changes.slice(0, 1), ['usermod --append --groups docker deploy']);
      assert.deepEqual(JSON.parse(await readFile(join(root, 'etc/cuttle/agent.json'), 'utf8')), {
        server: 'wss://d.example.com/a',
        token: 'tok',
        home: '/srv/deploy',
        name: 'w1',
        logLevel: 'debug',
      });
      assert.deepEqual(await modeOf(join(root, 'srv/deploy')), {
        mode: 0o700,
        uid: 5000,
        gid: 5000,
      });
      const unit = await readFile(join(root, 'etc/systemd/system/cuttle-agent.service'), 'utf8');
      assert.match(unit, /^User=deploy$/m);
      assert.match(unit, /^ReadWritePaths=\/srv\/deploy$/m);
    });

    it('refuses clearly when not root, without systemd, or without a docker group; a dry run only notes it', async () => {
      const root = await tempRoot({ systemd: false });
      const system = new FakeSystem();
      system.groups.delete('docker');
      let run = await service(['install', ...SETTINGS], { root, isRoot: false }, system);
      assert.equal(run.code, 1);
      assert.match(
        run.err.join('\n'),
        /^cuttle service: this changes the system .*run it as root.*\[not-root\]$/,
      );
      run = await service(['install', ...SETTINGS], { root }, system);
      assert.match(
        run.err.join('\n'),
        /systemd is not running on this machine \(no \/run\/systemd\/system\).*\[no-systemd\]$/,
      );
      await mkdir(join(root, 'run/systemd/system'), { recursive: true });
      run = await service(['install', ...SETTINGS], { root }, system);
      assert.match(
        run.err.join('\n'),
        /there is no docker group.*install Docker.*\[no-docker-group\]$/,
      );
      assert.deepEqual(system.changes, []);

      run = await service(['install', ...SETTINGS, '--dry-run'], { root, isRoot: false }, system);
      assert.equal(run.code, 0);
      assert.deepEqual(
        run.out
          .filter((l) => l.startsWith('note:'))
          .map((l) => /\[?(root|docker group)/.exec(l)?.[1]),
        ['root', 'docker group'],
      );
      assert.deepEqual(system.changes, []);
    });

    it('refuses homes, users and paths the service could not use, and unknown flags', async () => {
      const root = await tempRoot();
      const system = new FakeSystem();
      for (const [args, pattern] of [
        [
          ['--home', '/home/ci/cuttle'],
          /home: \/home\/ci\/cuttle cannot be the service's home.*\[unusable-path\]/,
        ],
        [['--home', '/var/lib'], /cannot be the service's home/],
        [['--home', '/tmp/agent'], /cannot be the service's home/],
        [['--home', '/srv/my agent'], /must be an absolute, normalised path/],
        [['--home', 'relative/home'], /must be an absolute, normalised path/],
        [['--ca', 'ca.pem'], /ca: give an absolute path the service can read/],
        [['--user', 'root'], /--user: "root" is not a user name for a service.*\[usage\]/],
        [['--user', 'Bad User'], /is not a user name/],
      ] as const) {
        const run = await service(['install', ...SETTINGS, ...args], { root }, system);
        assert.notEqual(run.code, 0, args.join(' '));
        assert.match(run.err.join('\n'), pattern);
      }
      const hidden = await serviceCommand(['install', ...SETTINGS], {
        host: { root, exec: system.exec, isRoot: true },
        env: {},
        command: ['/root/.nvm/versions/node/v20/bin/node', '/root/cuttle/dist/agent/cli.js'],
        out: () => undefined,
        err: (line) =>
          assert.match(line, /\/root\/\.nvm.* is hidden from the service .*npm install -g/),
      });
      assert.equal(hidden, 1);
      await assert.rejects(
        service(['install', ...SETTINGS, '--capacty', '3'], { root }, system),
        (error) =>
          error instanceof CuttleError &&
          /unknown flag --capacty \(did you mean --capacity\?\)/.test(error.message),
      );
      await assert.rejects(
        service(['install', '--server', 'wss://x.example.com/a'], { root }, system),
        (error) =>
          error instanceof CuttleError &&
          error.code === 'config-invalid' &&
          /token: required/.test(error.message),
      );
      const bare = await service(['install'], { root }, system);
      assert.equal(bare.code, 2);
      assert.match(bare.err.join('\n'), /give the agent's settings: --config FILE/);
      assert.deepEqual(system.changes, []);
      const unknown = await service(['restart'], { root }, system);
      assert.equal(unknown.code, 2);
      assert.ok(unknown.err.join('\n').includes(SERVICE_USAGE));
    });
  });

  describe('uninstall and status', () => {
    before(function () {
      if (!isRoot) this.skip();
    });

    it('status says what is there; uninstall stops and removes the unit, keeps the rest, and is idempotent; --purge removes all', async () => {
      const root = await tempRoot();
      const system = new FakeSystem();
      let status = await service(['status'], { root }, system);
      assert.equal(status.code, 4);
      assert.match(
        status.out.join('\n'),
        /unit: {4}\/etc\/systemd\/system\/cuttle-agent\.service is missing/,
      );

      assert.equal((await service(['install', ...SETTINGS], { root }, system)).code, 0);
      status = await service(['status'], { root }, system);
      assert.equal(status.code, 0);
      assert.deepEqual(status.out, [
        'cuttle-agent.service: active (enabled)',
        'unit:    /etc/systemd/system/cuttle-agent.service',
        'config:  /etc/cuttle/agent.json (0600, cuttle)',
        'user:    cuttle (uid 4242; groups cuttle docker)',
        'home:    /var/lib/cuttle (0700, cuttle)',
        'logs:    journalctl -u cuttle-agent -f',
      ]);
      system.active = false;
      assert.equal((await service(['status'], { root }, system)).code, 3);
      system.active = true;

      system.calls.length = 0;
      const dry = await service(['uninstall', '--dry-run'], { root }, system);
      assert.deepEqual(dry.out.slice(1), [
        'would run systemctl disable --now cuttle-agent.service (running steps get the grace period first)',
        'would remove /etc/systemd/system/cuttle-agent.service',
        'would run systemctl daemon-reload',
      ]);
      assert.deepEqual(system.changes, []);

      const removed = await service(['uninstall'], { root }, system);
      assert.equal(removed.code, 0);
      assert.deepEqual(system.changes, [
        'systemctl disable --now cuttle-agent.service',
        'systemctl daemon-reload',
      ]);
      assert.ok(!existsSync(join(root, 'etc/systemd/system/cuttle-agent.service')));
      assert.ok(existsSync(join(root, 'etc/cuttle/agent.json')));
      assert.ok(existsSync(join(root, 'var/lib/cuttle')));
      assert.match(
        removed.out.at(-1) ?? '',
        /kept \/etc\/cuttle\/agent\.json, \/var\/lib\/cuttle and user cuttle \(--purge removes them\)/,
      );

      system.calls.length = 0;
      const again = await service(['uninstall'], { root }, system);
      assert.match(again.out.join('\n'), /^nothing to remove/);
      assert.deepEqual(system.changes, []);

      const purge = await service(['uninstall', '--purge'], { root }, system);
      assert.equal(purge.code, 0);
      assert.match(purge.out[0] ?? '', /^warning: --purge removes \/var\/lib\/cuttle/);
      assert.deepEqual(system.changes, ['userdel cuttle']);
      assert.ok(!existsSync(join(root, 'etc/cuttle')));
      assert.ok(!existsSync(join(root, 'var/lib/cuttle')));
      assert.ok(!system.users.has('cuttle'));
    });
  });

  describe('install with the real useradd and chown', () => {
    const user = `cuttle-t${randomBytes(4).toString('hex')}`;
    before(function () {
      const missing = ['useradd', 'userdel', 'usermod', 'getent'].filter(
        (program) => spawnSync('sh', ['-c', `command -v ${program}`]).status !== 0,
      );
      if (!isRoot || missing.length > 0 || spawnSync('getent', ['group', 'docker']).status !== 0) {
        console.log(
          `      (skipped: needs root, a docker group and ${['useradd', 'userdel', 'usermod', 'getent'].join(', ')}${missing.length > 0 ? `; missing ${missing.join(', ')}` : ''})`,
        );
        this.skip();
      }
    });
    after(() => {
      if (spawnSync('getent', ['passwd', user]).status === 0) spawnSync('userdel', [user]);
      if (spawnSync('getent', ['group', user]).status === 0) spawnSync('groupdel', [user]);
    });

    it('creates a system user in the docker group that owns its home and settings, then purges it', async () => {
      const root = await tempRoot();
      const system = new FakeSystem(true);
      const args = ['install', ...SETTINGS, '--user', user, '--home', `/var/lib/${user}`];
      const first = await service(args, { root }, system);
      assert.equal(first.code, 0, first.err.join('\n'));
      const passwd = execFileSync('getent', ['passwd', user], { encoding: 'utf8' })
        .trim()
        .split(':');
      const uid = Number(passwd[2]);
      assert.ok(uid > 0 && uid < 1000, `a system uid, not ${uid}`);
      assert.equal(passwd[5], `/var/lib/${user}`);
      assert.equal(passwd[6], '/usr/sbin/nologin');
      assert.ok(!existsSync(`/var/lib/${user}`), 'useradd made no home outside the root');
      const groups = execFileSync('id', ['-nG', user], { encoding: 'utf8' }).trim().split(' ');
      assert.deepEqual(groups.sort(), ['docker', user].sort());
      const gid = Number(passwd[3]);
      assert.deepEqual(await modeOf(join(root, 'var/lib', user)), { mode: 0o700, uid, gid });
      assert.deepEqual(await modeOf(join(root, 'etc/cuttle/agent.json')), {
        mode: 0o600,
        uid,
        gid,
      });

      system.calls.length = 0;
      const second = await service(args, { root }, system);
      assert.match(second.out.join('\n'), /^nothing to change/);
      assert.deepEqual(system.changes, []);

      const purge = await service(['uninstall', '--purge', '--user', user], { root }, system);
      assert.equal(purge.code, 0, purge.err.join('\n'));
      assert.notEqual(spawnSync('getent', ['passwd', user]).status, 0);
      assert.notEqual(spawnSync('getent', ['group', user]).status, 0);
      assert.ok(!existsSync(join(root, 'var/lib', user)));
    });
  });
});

describe('systemd/cuttle-agent.service', () => {
  const unitFile = join(REPO, 'systemd', 'cuttle-agent.service');
  let analyze: string | undefined;

  before(function () {
    this.timeout(600_000);
    if (spawnSync('systemd-analyze', ['--version']).status !== 0 && isRoot) {
      console.log('      (systemd-analyze is missing: apt-get install -y systemd)');
      spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'systemd'], {
        stdio: 'ignore',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
    }
    analyze =
      spawnSync('systemd-analyze', ['--version']).status === 0 ? 'systemd-analyze' : undefined;
  });

  /** `systemd-analyze verify` exits 0 on some mistakes (unknown keys), so its output must be empty too. */
  function verify(this: Mocha.Context, path: string): void {
    if (analyze === undefined) {
      console.log(
        '      (skipped: systemd-analyze is not installed and could not be: apt-get install -y systemd)',
      );
      this.skip();
    }
    const result = spawnSync(analyze, ['verify', path], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(
      `${result.stdout}${result.stderr}`.trim(),
      '',
      'systemd-analyze verify said something',
    );
  }

  it('is what cuttle service install writes by default', async () => {
    assert.equal(await readFile(unitFile, 'utf8'), renderUnit(DEFAULT_UNIT_OPTIONS));
  });

  it('passes systemd-analyze verify', function () {
    verify.call(this, unitFile);
  });

  it('passes systemd-analyze verify as rendered for another user, home and grace period', async function () {
    const dir = await mkdtemp(join(tmpdir(), 'cuttle-unit-'));
    try {
      const path = join(dir, 'cuttle-agent.service');
      await writeFile(
        path,
        renderUnit({
          user: 'deploy',
          home: '/srv/cuttle',
          configPath: '/etc/cuttle/agent.json',
          command: [process.execPath, join(REPO, 'package.json')],
          graceSeconds: 3600,
        }),
      );
      verify.call(this, path);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('restarts always, drains on SIGTERM for longer than the grace period, and is hardened', async () => {
    const settings = new Map<string, string>();
    for (const line of (await readFile(unitFile, 'utf8')).split('\n')) {
      const match = /^([A-Za-z]+)=(.*)$/.exec(line);
      if (match?.[1] !== undefined) settings.set(match[1], match[2] ?? '');
    }
    const expected: Record<string, string> = {
      Type: 'exec',
      Restart: 'always',
      RestartSec: '5',
      User: 'cuttle',
      SupplementaryGroups: 'docker',
      KillSignal: 'SIGTERM',
      KillMode: 'mixed',
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ReadWritePaths: '/var/lib/cuttle',
      PrivateTmp: 'yes',
      ProtectHome: 'yes',
      ProtectKernelTunables: 'yes',
      ProtectControlGroups: 'yes',
      RestrictSUIDSGID: 'yes',
      LockPersonality: 'yes',
      WantedBy: 'multi-user.target',
    };
    for (const [key, value] of Object.entries(expected))
      assert.equal(settings.get(key), value, key);
    assert.ok(Number(settings.get('TimeoutStopSec')) > 600);
    assert.ok(!settings.has('MemoryDenyWriteExecute'), 'Node.js needs W+X memory for its JIT');
    assert.match(
      settings.get('ExecStart') ?? '',
      / agent --config \/etc\/cuttle\/agent\.json --log-format json$/,
    );
  });
});
