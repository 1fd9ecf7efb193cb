import assert from 'node:assert/strict';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DockerClient } from '../../images/docker-client.js';

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
});
