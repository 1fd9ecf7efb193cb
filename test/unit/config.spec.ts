import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, envName, flagName, loadConfig } from '../../agent/config.js';

describe('agent configuration', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cuttle-config-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('derives flag and variable names from the keys', () => {
    assert.equal(flagName('serverCertSha256'), 'server-cert-sha256');
    assert.equal(envName('serverCertSha256'), 'CUTTLE_SERVER_CERT_SHA256');
    assert.equal(envName('tokenFile'), 'CUTTLE_TOKEN_FILE');
  });

  it('applies defaults, and flags win over variables, which win over the file', async () => {
    const file = join(dir, 'agent.json');
    await writeFile(
      file,
      JSON.stringify({ server: 'ws://127.0.0.1:1', token: 'f', capacity: 3, name: 'from-file' }),
    );
    const config = loadConfig({
      file,
      env: { CUTTLE_CAPACITY: '5', CUTTLE_NAME: 'from-env' },
      flags: { name: 'from-flag' },
    });
    assert.equal(config.capacity, 5);
    assert.equal(config.name, 'from-flag');
    assert.equal(config.token, 'f');
    assert.equal(config.home, '/var/lib/cuttle');
    assert.equal(config.graceSeconds, 600);
    assert.equal(config.allowInsecure, false);
  });

  it('names the key and its source when a value is wrong', () => {
    assert.throws(
      () =>
        loadConfig({
          env: { CUTTLE_CAPACITY: 'lots' },
          flags: { server: 'ws://127.0.0.1:1', token: 't' },
        }),
      (error: unknown) => error instanceof ConfigError && /CUTTLE_CAPACITY/.test(error.message),
    );
    assert.throws(
      () =>
        loadConfig({
          env: {},
          flags: { server: 'ws://127.0.0.1:1', token: 't', logLevel: 'loud' },
        }),
      /--log-level/,
    );
  });

  it('suggests the nearest key for an unknown one in the file', async () => {
    const file = join(dir, 'typo.json');
    await writeFile(file, JSON.stringify({ server: 'ws://127.0.0.1:1', tokne: 'x' }));
    assert.throws(
      () => loadConfig({ file, env: {}, flags: {} }),
      /"tokne": unknown key \(did you mean "token"\?\)/,
    );
  });

  it('requires a token, reads a token file, and refuses both', async () => {
    const base = { server: 'ws://127.0.0.1:1' };
    assert.throws(() => loadConfig({ env: {}, flags: base }), /token: required/);
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, 's3cret\n');
    assert.equal(loadConfig({ env: {}, flags: { ...base, tokenFile } }).token, 's3cret');
    assert.throws(
      () => loadConfig({ env: {}, flags: { ...base, tokenFile, token: 'x' } }),
      /not both/,
    );
  });

  it('parses booleans from variables and rejects nonsense', () => {
    const flags = { server: 'ws://127.0.0.1:1', token: 't' };
    assert.equal(loadConfig({ env: { CUTTLE_ALLOW_INSECURE: 'true' }, flags }).allowInsecure, true);
    assert.throws(
      () => loadConfig({ env: { CUTTLE_ALLOW_INSECURE: 'maybe' }, flags }),
      /CUTTLE_ALLOW_INSECURE/,
    );
  });
});
