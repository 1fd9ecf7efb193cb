import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerClient } from '../../images/docker-client.js';
import { DockerOperationError, ImageNotFoundError } from '../../images/docker-errors.js';
import { translateContainerOptions } from '../../images/container-options/index.js';
import type { StepContainerSpec } from '../../images/step-container-spec.js';

/** What the fake engine was asked. */
interface Recorded {
  method: string;
  url: string;
  body: unknown;
}

describe('images: DockerClient', function () {
  describe('the sockets it dials', function () {
    const saved = process.env.DOCKER_HOST;
    afterEach(function () {
      if (saved === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = saved;
    });

    it('knows them from the socket given, DOCKER_HOST or the defaults', function () {
      assert.deepEqual(DockerClient.connect({ socketPath: '/tmp/engine.sock' }).socketPaths, [
        '/tmp/engine.sock',
      ]);
      process.env.DOCKER_HOST = 'unix:///run/user/1000/docker.sock';
      assert.deepEqual(DockerClient.connect().socketPaths, ['/run/user/1000/docker.sock']);
      process.env.DOCKER_HOST = 'tcp://10.0.0.5:2375';
      assert.deepEqual(DockerClient.connect().socketPaths, []);
      delete process.env.DOCKER_HOST;
      assert.deepEqual(DockerClient.connect().socketPaths, [
        '/var/run/docker.sock',
        join(homedir(), '.docker', 'run', 'docker.sock'),
      ]);
    });
  });

  describe('creating containers (against a fake engine on a unix socket)', function () {
    let folder = '';
    let server: Server | undefined;
    let requests: Recorded[] = [];
    /** The fake engine's answer to the next create: status and JSON body. */
    let answer: { status: number; body: unknown } = { status: 201, body: { Id: 'c0ffee' } };
    let docker: DockerClient;
    const work = '/home/cuttle/Work/20261122143005-T-1-1';
    const spec: StepContainerSpec = {
      image: 'alpine:3',
      agentId: 'agent-1',
      taskId: 'T-1',
      workFolder: work,
      command: ['/bin/sh', `${work}/.cuttle/launch.sh`],
      env: ['SECRET_TOKEN=hunter2'],
    };

    before(async function () {
      folder = await mkdtemp(join(tmpdir(), 'cuttle-fake-engine-'));
      const socketPath = join(folder, 'engine.sock');
      server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          requests.push({
            method: req.method ?? '',
            url: req.url ?? '',
            body: text === '' ? undefined : JSON.parse(text),
          });
          res.writeHead(answer.status, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify(answer.body));
        });
      });
      const listening = server;
      await new Promise<void>((resolve) => listening.listen(socketPath, resolve));
      docker = DockerClient.connect({ socketPath });
    });

    beforeEach(function () {
      requests = [];
      answer = { status: 201, body: { Id: 'c0ffee' } };
    });

    after(async function () {
      const listening = server;
      if (listening !== undefined) await new Promise((resolve) => listening.close(resolve));
      await rm(folder, { recursive: true, force: true });
    });

    it('sends the create options only in the body, and the platform as the query', async function () {
      const options = translateContainerOptions(
        '-e OPTION_TOKEN=s3cret --platform linux/arm64 --memory 64m',
        { workFolder: work },
      );
      assert.equal(await docker.createStepContainer(spec, options), 'c0ffee');
      const [request] = requests;
      assert.equal(request?.method, 'POST');
      assert.equal(request.url, '/containers/create?platform=linux%2Farm64');
      const body = request.body;
      assert.ok(typeof body === 'object' && body !== null);
      assert.deepEqual(Reflect.get(body, 'Env'), ['SECRET_TOKEN=hunter2', 'OPTION_TOKEN=s3cret']);
      assert.equal(Reflect.get(Reflect.get(body, 'HostConfig'), 'Memory'), 64 * 1024 ** 2);
      assert.equal(Reflect.has(body, 'platform'), false, 'platform is a query parameter only');
    });

    it('sends no query at all when there is no platform', async function () {
      await docker.createStepContainer(spec);
      await docker.createInertContainer('alpine:3', { 'dev.cuttle.agent': 'agent-1' });
      assert.deepEqual(
        requests.map((r) => r.url),
        ['/containers/create', '/containers/create'],
      );
      assert.deepEqual(Reflect.get(Object(requests[1]?.body), 'Labels'), {
        'dev.cuttle.agent': 'agent-1',
      });
    });

    it('reports a missing image as image-not-found', async function () {
      answer = { status: 404, body: { message: 'No such image: alpine:nope' } };
      await assert.rejects(
        docker.createStepContainer({ ...spec, image: 'alpine:nope' }),
        (error) => {
          assert.ok(error instanceof ImageNotFoundError, String(error));
          assert.equal(error.code, 'image-not-found');
          return true;
        },
      );
      await assert.rejects(docker.createInertContainer('alpine:nope', {}), ImageNotFoundError);
    });

    for (const message of [
      'network ci not found',
      'could not get container for db: No such container: db',
      'error looking up volume plugin nfs: plugin "nfs" not found',
    ]) {
      it(`reports another 404 with the engine's words: ${message}`, async function () {
        answer = { status: 404, body: { message } };
        await assert.rejects(docker.createStepContainer(spec), (error) => {
          assert.ok(!(error instanceof ImageNotFoundError), 'not image-not-found');
          assert.ok(error instanceof DockerOperationError, String(error));
          assert.equal(error.statusCode, 404);
          assert.equal(
            error.message,
            `Docker engine failed to create a container from alpine:3: ${message}`,
          );
          return true;
        });
      });
    }
  });
});
