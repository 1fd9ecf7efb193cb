// For each option string: one container created by the docker CLI (`docker create <options> IMAGE
// true`, run with execFile, no shell) and one created through cuttle's translation merged into a step
// container's create options. Both are inspected and the settings that matter are compared.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { DEMO_IMAGE, DockerClient, ensureDemoImage } from '../../images/index.js';
import { toCreateOptions } from '../../images/step-container-spec.js';
import {
  OptionsInvalidError,
  mergeIntoCreateOptions,
  splitWords,
  translateContainerOptions,
} from '../../images/container-options/index.js';

const run = promisify(execFile);
const TEST_LABEL = 'dev.cuttle.test';
const TEST_LABEL_VALUE = 'options';

interface Fixture {
  work: string;
  bindA: string;
  bindB: string;
  network: string;
  volume: string;
  helper: string;
  /** The first three octets of the test network's /24. */
  subnet: string;
}

/** `{work}`, `{a}`, `{b}`, `{net}`, `{vol}`, `{helper}` are replaced by the fixture's values. */
const CORPUS: string[] = [
  // Environment, labels, identity
  '-e FOO=bar',
  '-e FOO=bar -e BAZ=qux',
  '--env FOO=bar --env=EMPTY=',
  '-eFOO=glued',
  '-e=FOO=equals',
  `-e 'GREETING=hello world' -e "QUOTED=a \\"b\\" c"`,
  '--env-file vars.env',
  '--env-file vars.env -e EXTRA=1',
  '--label team=ops --label tier=backend',
  '-l flag-only',
  '--label-file labels.txt',
  '-u 1000',
  '--user 1000:1000',
  '-u nobody --group-add 100 --group-add 101',
  '-w /tmp',
  '--workdir=/var/tmp',
  '-h build-host',
  '--hostname build-host --domainname example.com',
  '--stop-signal SIGINT',
  '--stop-signal=SIGUSR1 --stop-timeout 5',
  '--stop-timeout=0',
  '--entrypoint /bin/sh',
  '--entrypoint=',
  '--platform linux/amd64',
  // Volumes and mounts
  '-v {a}:/data',
  '-v {a}:/data:ro',
  '-v {a}:/data:ro -v {b}:/cache:rw',
  '--volume {a}:/data:z',
  '-v {a}:/data:ro,rshared',
  '-v /anonymous',
  '-v {vol}:/named',
  '-v {vol}:/named:ro,nocopy',
  '--mount type=bind,source={a},target=/data',
  '--mount type=bind,src={a},dst=/data,readonly',
  '--mount type=bind,source={a},target=/data,bind-propagation=rslave',
  '--mount "type=bind,source={a},target=/data,ro=true"',
  '--mount type=bind,source={a},target=/data,bind-recursive=disabled',
  '--mount type=volume,source={vol},target=/named',
  '--mount type=volume,target=/anon,volume-nocopy',
  '--mount type=volume,source={vol},target=/named,volume-label=a=b',
  '--mount type=tmpfs,target=/scratch',
  '--mount type=tmpfs,target=/scratch,tmpfs-size=64m,tmpfs-mode=1770',
  '--tmpfs /run',
  '--tmpfs /run:rw,noexec,nosuid,size=65536k',
  '--read-only --tmpfs /tmp',
  '--read-only=true',
  '--volumes-from {helper}',
  '--volumes-from {helper}:ro',
  // Networking
  '--network none',
  '--network bridge',
  '--network host',
  '--net=host',
  '--network {net}',
  '--network {net} --network-alias builder',
  '--network {net} --net-alias a1 --network-alias a2',
  '--network name={net},alias=x1,alias=x2',
  '--network {net} --ip {subnet}.10',
  '--network name={net},ip={subnet}.11',
  '--add-host db:10.0.0.5',
  '--add-host=db=10.0.0.5 --add-host api:10.0.0.6',
  '--add-host ip6:[::1]',
  '--add-host gw:host-gateway',
  '--dns 8.8.8.8 --dns 1.1.1.1',
  '--dns-search example.com --dns-option ndots:2',
  '--dns-opt timeout:1',
  '-p 8080:80',
  '-p 127.0.0.1:8081:80/udp',
  '-p 80',
  '--publish 8082-8084:80-82',
  '-p 127.0.0.1::80',
  '--publish published=8085,target=80',
  '--publish published=8086,target=81,protocol=udp',
  '-P --expose 9000',
  '--expose 7000-7002/udp',
  // Resources
  '-m 64m',
  '--memory=128m --memory-swap 256m',
  '--memory 64m --memory-swap -1',
  '--memory-reservation 32m',
  '--memory-swappiness 10',
  '--kernel-memory 64m',
  '--cpus 1.5',
  '--cpus=0.25',
  '-c 512',
  '--cpu-shares=1024 --cpuset-cpus 0',
  '--cpuset-cpus 0-1 --cpuset-mems 0',
  '--cpu-period 100000 --cpu-quota 50000',
  '--pids-limit 100',
  '--pids-limit=-1',
  '--ulimit nofile=1024:2048',
  '--ulimit nproc=512 --ulimit core=0:0',
  '--shm-size 128m',
  '--shm-size=1g',
  '--oom-kill-disable',
  '--oom-score-adj 500',
  '--blkio-weight 300',
  '--device-read-bps /dev/vda:1mb --device-write-iops /dev/vda:100',
  '--cgroup-parent cuttle-test.slice',
  // Security and namespaces
  '--cap-add NET_ADMIN',
  '--cap-add net_admin --cap-add CAP_SYS_TIME --cap-drop MKNOD',
  '--cap-drop ALL --cap-add chown',
  '--privileged',
  '--security-opt no-new-privileges',
  '--security-opt seccomp=unconfined',
  '--security-opt apparmor=unconfined --security-opt label=disable',
  '--security-opt label:level:s0:c100,c200',
  '--security-opt seccomp=profile.json',
  '--security-opt systempaths=unconfined',
  '--userns host',
  '--pid host',
  '--ipc host',
  '--ipc private',
  '--ipc shareable',
  '--uts host',
  '--cgroupns private',
  '--cgroupns=host',
  '--device /dev/null',
  '--device /dev/null:/dev/mynull:r',
  '--device-cgroup-rule "c 1:3 rwm"',
  // The rest
  '--init',
  '--init=false',
  '--sysctl net.ipv4.ip_forward=1',
  '--sysctl net.core.somaxconn=1024 --sysctl kernel.shmmax=65536',
  '--runtime runc',
  '--isolation default',
  '--log-driver json-file --log-opt max-size=10m',
  '--log-driver none',
  '--health-cmd "wget -q -O- localhost || exit 1" --health-interval 30s --health-retries 3',
  '--health-cmd true --health-timeout 1m30s --health-start-period 2s',
  '--no-healthcheck',
  '--restart no',
  '--rm=false',
  // Realistic combinations
  '-e CI=true -v {a}:/src:ro -w /src --network {net} --memory 256m --cpus 1',
  '--user 1000:1000 --read-only --tmpfs /tmp:rw,size=64m --cap-drop ALL --security-opt no-new-privileges --pids-limit 200',
  '--add-host registry.local:10.1.2.3 --dns 10.1.2.1 -e HTTP_PROXY=http://proxy:3128 --label build=42',
  '-m 1g --memory-swap 2g --cpus 2 --ulimit nofile=65536:65536 --shm-size 256m',
  '--mount type=bind,source={a},target=/cache -e "NODE_OPTIONS=--max-old-space-size=512" --init',
  '-p 3000:3000 -p 9229:9229 --expose 8080 -h dev --env-file vars.env',
  `--network {net} --network-alias svc -e 'JAVA_OPTS=-Xmx512m -Xms256m' --stop-signal SIGTERM --stop-timeout 30`,
  '--security-opt apparmor=unconfined --cap-add SYS_PTRACE --pid host',
];

/** Strings the docker CLI refuses; cuttle must refuse them too (before any engine call). */
const REFUSED_BY_BOTH: string[] = [
  '--memory 12x',
  '--cpus abc',
  '--cpus 0.0000000001',
  '--ulimit nofile=2048:1024',
  '--ulimit bogus=1',
  '-p 127.0.0.1:80:80:80',
  '--expose 80:80',
  '--health-interval -1s',
  '--no-healthcheck --health-cmd true',
  '--network-alias x',
  '--mount type=bind,target=/x,bogus=1',
  '--mount type=tmpfs,target=/x,volume-nocopy',
  '--sysctl kernel.hostname=x',
  '--dns not-an-ip',
  '--add-host nocolon',
  '--security-opt seccomp',
  '--memory-swappiness 101',
  '--device /dev/null:relative',
  '--memroy 1g',
  '--log-driver none --log-opt max-size=1m',
];

/** Settings the CLI refuses only because this engine is too old; cuttle sends them anyway. */
const NEWER_API_ONLY: string[] = [
  '--mac-address 02:42:ac:11:00:99',
  '--annotation com.example.key=value',
  '--health-cmd true --health-start-interval 1s',
];

function fill(options: string, fixture: Fixture): string {
  return options
    .replaceAll('{work}', fixture.work)
    .replaceAll('{a}', fixture.bindA)
    .replaceAll('{b}', fixture.bindB)
    .replaceAll('{net}', fixture.network)
    .replaceAll('{vol}', fixture.volume)
    .replaceAll('{helper}', fixture.helper)
    .replaceAll('{subnet}', fixture.subnet);
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Drops "unset" values (null, '', 0, false, [], {}) so that omitted and default compare equal. */
function prune(value: unknown): Json | undefined {
  if (value === null || value === undefined || value === '' || value === 0 || value === false) {
    return undefined;
  }
  if (Array.isArray(value)) {
    const items = value.map((item) => prune(item) ?? null);
    return items.length === 0 ? undefined : items;
  }
  if (isRecord(value)) {
    const out: { [key: string]: Json } = {};
    for (const [key, item] of Object.entries(value)) {
      const pruned = prune(item);
      if (pruned !== undefined) out[key] = pruned;
    }
    return Object.keys(out).length === 0 ? undefined : out;
  }
  if (typeof value === 'boolean' || typeof value === 'number' || typeof value === 'string') {
    return value;
  }
  return JSON.stringify(value);
}

function record(value: unknown): Record<string, unknown> {
  return isRecord(value) ? value : {};
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** The settings that matter, without names, ids, timestamps and the step's own additions. */
function settingsOf(inspect: unknown, work: string, stepOwned: string[]): Json | undefined {
  const info = record(inspect);
  const id = typeof info.Id === 'string' ? info.Id : '';
  const config = { ...record(info.Config) };
  const host = { ...record(info.HostConfig) };
  for (const key of [
    'Cmd',
    'Entrypoint',
    'Image',
    'AttachStdin',
    'AttachStdout',
    'AttachStderr',
    'Tty',
    'OpenStdin',
    'StdinOnce',
  ]) {
    delete config[key];
  }
  if (config.Hostname === id.slice(0, 12)) delete config.Hostname;
  // cuttle's step runs in its work folder unless --workdir says otherwise.
  if (config.WorkingDir === work) delete config.WorkingDir;
  config.Env = strings(config.Env).sort();
  const labels = { ...record(config.Labels) };
  for (const key of Object.keys(labels)) if (key.startsWith('dev.cuttle.')) delete labels[key];
  config.Labels = labels;
  // The step's own HostConfig settings (log config, init, …) always win over the options.
  for (const key of ['ConsoleSize', ...stepOwned]) delete host[key];
  host.Binds = strings(host.Binds)
    .filter((bind) => bind !== `${work}:${work}`)
    .sort();
  // The engine stores "no limit" as -1 or as unset, depending on who asked.
  if (host.MemorySwappiness === -1) delete host.MemorySwappiness;
  // The CLI always sends its default restart policy "no"; unset means the same.
  if (record(host.RestartPolicy).Name === 'no') delete host.RestartPolicy;
  const mounts = (Array.isArray(info.Mounts) ? info.Mounts : [])
    .map(record)
    .filter((mount) => mount.Destination !== work)
    .map((mount) => {
      const copy = { ...mount };
      // Anonymous volumes get random names.
      if (typeof copy.Name === 'string' && /^[0-9a-f]{64}$/.test(copy.Name)) {
        delete copy.Name;
        delete copy.Source;
      }
      return copy;
    })
    .sort((a, b) => String(a.Destination).localeCompare(String(b.Destination)));
  const networks: Record<string, unknown> = {};
  for (const [name, endpoint] of Object.entries(record(record(info.NetworkSettings).Networks))) {
    const e = record(endpoint);
    networks[name] = {
      Aliases: e.Aliases,
      IPAMConfig: e.IPAMConfig,
      Links: e.Links,
      DriverOpts: e.DriverOpts,
    };
  }
  return prune({ Config: config, HostConfig: host, Mounts: mounts, Networks: networks });
}

describe('container options: differential against the docker CLI', function () {
  this.timeout(600_000);
  const docker = new Docker();
  const runId = randomUUID().slice(0, 8);
  const agentId = `test-agent-options-${runId}`;
  const fixture: Fixture = {
    work: '',
    bindA: '',
    bindB: '',
    network: `cuttle-options-net-${runId}`,
    volume: `cuttle-options-vol-${runId}`,
    helper: '',
    subnet: '',
  };
  let root = '';
  let dockerConfig = '';
  const created: string[] = [];

  async function cliCreate(options: string): Promise<{ id?: string; error?: string }> {
    const args = ['create', '--label', `${TEST_LABEL}=${TEST_LABEL_VALUE}`];
    args.push(...splitWords(fill(options, fixture)), DEMO_IMAGE, 'true');
    try {
      const { stdout } = await run('docker', args, {
        cwd: fixture.work,
        // No proxy settings from a config file, no variables to look up.
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DOCKER_CONFIG: dockerConfig },
      });
      const id = stdout.trim().split('\n').at(-1) ?? '';
      created.push(id);
      return { id };
    } catch (error) {
      const stderr = isRecord(error) && typeof error.stderr === 'string' ? error.stderr : '';
      return { error: stderr.trim() || String(error) };
    }
  }

  function stepOptions() {
    return toCreateOptions({
      image: DEMO_IMAGE,
      agentId,
      taskId: 'T-options',
      workFolder: fixture.work,
      command: ['true'],
    });
  }

  /** HostConfig keys that the step sets itself (but Binds, where the step's bind is filtered). */
  function stepOwnedHostKeys(): string[] {
    return Object.keys(stepOptions().HostConfig ?? {}).filter((key) => key !== 'Binds');
  }

  async function cuttleCreate(options: string): Promise<string> {
    const translated = translateContainerOptions(fill(options, fixture), {
      workFolder: fixture.work,
    });
    translated.config.Labels = { ...translated.config.Labels, [TEST_LABEL]: TEST_LABEL_VALUE };
    const base = stepOptions();
    const container = await docker.createContainer(mergeIntoCreateOptions(base, translated));
    created.push(container.id);
    return container.id;
  }

  before(async function () {
    await ensureDemoImage(DockerClient.connect());
    root = await realpath(await mkdtemp(join(tmpdir(), 'cuttle-options-')));
    fixture.work = join(root, 'work');
    fixture.bindA = join(root, 'a');
    fixture.bindB = join(root, 'b');
    dockerConfig = join(root, 'docker-config');
    for (const dir of [fixture.work, fixture.bindA, fixture.bindB, dockerConfig]) await mkdir(dir);
    await writeFile(join(fixture.work, 'vars.env'), '# comment\nA=1\nB=two words\n\nC=\n');
    await writeFile(join(fixture.work, 'labels.txt'), 'owner=team-a\nstage=test\n');
    await writeFile(
      join(fixture.work, 'profile.json'),
      JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [] }, null, 2),
    );
    // A /24 that no other network (or route of this host) uses yet.
    for (let attempt = 0; fixture.subnet === ''; attempt += 1) {
      const candidate = `10.${200 + (attempt % 50)}.${Math.floor(Math.random() * 250)}`;
      try {
        await docker.createNetwork({
          Name: fixture.network,
          Labels: { [TEST_LABEL]: TEST_LABEL_VALUE },
          IPAM: { Config: [{ Subnet: `${candidate}.0/24` }] },
        });
        fixture.subnet = candidate;
      } catch (error) {
        if (attempt >= 20) throw error;
      }
    }
    const helper = await docker.createContainer({
      Image: DEMO_IMAGE,
      Cmd: ['true'],
      Labels: { [TEST_LABEL]: TEST_LABEL_VALUE },
      Volumes: { '/shared': {} },
    });
    fixture.helper = helper.id;
    created.push(helper.id);
  });

  after(async function () {
    for (const id of created) {
      await docker
        .getContainer(id)
        .remove({ force: true, v: true })
        .catch(() => undefined);
    }
    await docker
      .getNetwork(fixture.network)
      .remove()
      .catch(() => undefined);
    await docker
      .getVolume(fixture.volume)
      .remove()
      .catch(() => undefined);
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  it(`has a corpus of at least 80 option strings (${CORPUS.length})`, function () {
    assert.ok(CORPUS.length >= 80);
  });

  for (const options of CORPUS) {
    it(`matches the CLI: ${options}`, async function () {
      const cli = await cliCreate(options);
      assert.equal(cli.error, undefined, `the docker CLI refused it: ${cli.error}`);
      const ours = await cuttleCreate(options);
      const owned = stepOwnedHostKeys();
      const expected = settingsOf(
        await docker.getContainer(cli.id ?? '').inspect(),
        fixture.work,
        owned,
      );
      const actual = settingsOf(await docker.getContainer(ours).inspect(), fixture.work, owned);
      assert.deepEqual(actual, expected);
    });
  }

  for (const options of REFUSED_BY_BOTH) {
    it(`refuses what the CLI refuses: ${options}`, async function () {
      const cli = await cliCreate(options);
      assert.notEqual(cli.error, undefined, 'the docker CLI accepted it');
      assert.throws(
        () => translateContainerOptions(fill(options, fixture), { workFolder: fixture.work }),
        OptionsInvalidError,
      );
    });
  }

  for (const options of NEWER_API_ONLY) {
    it(`creates what this engine's API version makes the CLI refuse: ${options}`, async function () {
      const cli = await cliCreate(options);
      assert.match(cli.error ?? '', /requires API version/);
      const ours = await cuttleCreate(options);
      assert.ok(await docker.getContainer(ours).inspect());
    });
  }
});
