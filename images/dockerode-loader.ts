/**
 * Loads dockerode without the dependencies of two features cuttle never uses, so that they cost
 * memory only if something does use them.
 *
 * At load time dockerode requires `lib/session.js` (BuildKit sessions), which requires
 * `@grpc/grpc-js` and `@grpc/proto-loader` (and with them protobufjs), and docker-modem requires
 * `lib/ssh.js` (ssh:// engine hosts), which requires `ssh2` (two native modules, and a WebAssembly
 * module that reserves 16 MiB). That is ~2 MB of JavaScript source, 3 MiB of heap and about 6 MiB
 * of the idle agent's resident memory (docs/performance.md, round 3). cuttle builds with the
 * classic builder, so it never opens a session; an `ssh://` DOCKER_HOST still works, and loads
 * ssh2 when it first connects.
 *
 * Before dockerode is required, each of those two files is put in the CommonJS module cache as a
 * stand-in that requires the real file on first use (a call, `new`, or reading a property). The
 * stand-ins are for the files that own the features rather than for the packages, because
 * docker-modem reads `require('ssh2').Client` while it loads: only its caller, `lib/ssh.js`, is
 * left untouched until an ssh:// host is used. node_modules is not patched. If a later version
 * moves these files, nothing is deferred and dockerode loads as before (the unit test
 * `dockerode-loader.spec.ts` then fails, as the memory it saves would be lost).
 *
 * The esbuild bundle that `npm run build` ships as dist/agent/cli.js does not use this module: it
 * bundles dockerode and compiles the same stand-ins (`dockerode-deferred.ts`) in place of those
 * files (`scripts/bundle.ts`, which imports `dockerode-bundled.ts` instead of this file).
 */
import Module, { createRequire } from 'node:module';
import type Dockerode from 'dockerode';
import { deferredExports, resolveDockerodeFile } from './dockerode-deferred.js';

const require = createRequire(import.meta.url);

/** dockerode's constructor, loaded once with the stand-ins in place. */
export const Docker: typeof Dockerode = loadDockerode();

function loadDockerode(): typeof Dockerode {
  // Each file is resolved as its package requires it (a path relative to the package's main
  // file), and docker-modem from dockerode's own location, where it is really installed.
  for (const file of [
    resolveDockerodeFile('dockerode', './session'),
    resolveDockerodeFile('docker-modem', './ssh'),
  ]) {
    if (file !== undefined) deferModule(file);
  }
  const loaded: unknown = require('dockerode');
  if (!isDockerodeConstructor(loaded)) throw new TypeError('dockerode did not export a class');
  return loaded;
}

/**
 * Registers, under the module's own file name, a stand-in for its exports that requires the real
 * module on first use and forwards to it from then on. A module already loaded is left alone.
 */
function deferModule(filename: string): void {
  const cache = require.cache;
  if (cache[filename] !== undefined) return;
  const standIn = deferredExports(filename, () => {
    // The stand-in holds the real module's cache entry: make way, then load the module.
    if (cache[filename]?.exports === standIn) delete cache[filename];
    return require(filename);
  });
  const entry = new Module(filename);
  entry.filename = filename;
  entry.exports = standIn;
  entry.loaded = true;
  cache[filename] = entry;
}

function isDockerodeConstructor(value: unknown): value is typeof Dockerode {
  return typeof value === 'function';
}
