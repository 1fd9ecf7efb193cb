/**
 * Bundles the `cuttle` command with esbuild into dist/agent/cli.js (run by `npm run build` after
 * tsc, whose output the bench, the tests and the agent image's probes still import): cuttle's code
 * and its npm dependencies as ES modules, code-split so that each command still loads only when it
 * runs (`agent/cli.ts` imports them dynamically; shared code goes to dist/agent/chunks/).
 *
 * Why: the idle agent keeps every loaded module's source text and compiled code in V8's heap, and
 * loading ~300 CommonJS files through Node's loader grows the young generation at start. The
 * bundle left the idle agent ~7 MiB smaller settled and ~11-13 MiB smaller at its maximum (the
 * commit that added this file has the figures).
 *
 * What stays outside the bundle, loaded from node_modules at run time:
 * - `bufferutil` and `utf-8-validate` (ws's optional native modules; their prebuilt binaries are
 *   found relative to their own package);
 * - dockerode's `lib/session.js` and `lib/buildkit.js` and docker-modem's `lib/ssh.js`: replaced by
 *   stand-ins (`images/dockerode-deferred.ts`) that require the installed file on first use, as
 *   `images/dockerode-loader.ts` does for the tsc build. They load gRPC, protobufjs and ssh2, which
 *   cuttle never uses unless DOCKER_HOST is ssh://, and find their .proto files by `__dirname`.
 *
 * Usage: `node --import tsx scripts/bundle.ts [OUTDIR]` (default dist/agent).
 */
import { rm } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type BuildOptions, type Plugin } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The dockerode files replaced by stand-ins, as each package requires them. */
const DEFERRED: Record<string, { pkg: 'dockerode' | 'docker-modem'; request: string }> = {
  [`${sep}dockerode${sep}lib${sep}./session`]: { pkg: 'dockerode', request: './session' },
  [`${sep}dockerode${sep}lib${sep}./buildkit`]: { pkg: 'dockerode', request: './buildkit' },
  [`${sep}docker-modem${sep}lib${sep}./ssh`]: { pkg: 'docker-modem', request: './ssh' },
};

const deferDockerodeFeatures: Plugin = {
  name: 'cuttle-defer-dockerode-features',
  setup(bundle) {
    const replaced = new Set<string>();
    // Our code: dockerode imported by the bundler instead of through the CommonJS cache.
    const loader = join(ROOT, 'images', 'dockerode-loader');
    bundle.onResolve({ filter: /dockerode-loader(\.[jt]s)?$/ }, (args) =>
      resolve(args.resolveDir, args.path).replace(/\.[jt]s$/, '') === loader
        ? { path: join(ROOT, 'images', 'dockerode-bundled.ts') }
        : undefined,
    );
    bundle.onResolve({ filter: /^\.\/(session|buildkit|ssh)$/ }, (args) => {
      const key = Object.keys(DEFERRED).find((suffix) =>
        `${args.resolveDir}${sep}${args.path}`.endsWith(suffix),
      );
      if (key === undefined) return undefined;
      replaced.add(key);
      return { path: key, namespace: 'cuttle-deferred' };
    });
    bundle.onLoad({ filter: /.*/, namespace: 'cuttle-deferred' }, (args) => {
      const deferred = DEFERRED[args.path];
      if (deferred === undefined) return undefined;
      const helper = join(ROOT, 'images', 'dockerode-deferred.ts');
      return {
        loader: 'js',
        resolveDir: ROOT,
        contents:
          `module.exports = require(${JSON.stringify(helper)})` +
          `.deferredDockerodeFile(${JSON.stringify(deferred.pkg)}, ${JSON.stringify(deferred.request)});\n`,
      };
    });
    // If a later dockerode moves these files, fail rather than bundle gRPC and ssh2 (or break
    // their __dirname lookups) without a word.
    bundle.onEnd((result) => {
      if (result.errors.length > 0) return;
      const missing = Object.entries(DEFERRED)
        .filter(([key]) => !replaced.has(key))
        .map(([, { pkg, request }]) => `${pkg} ${request}`);
      if (missing.length > 0) {
        return {
          errors: [{ text: `no longer required, so not deferred: ${missing.join(', ')}` }],
        };
      }
      return undefined;
    });
  },
};

/**
 * winston's own debug output (`DEBUG=winston:*`, through @dabh/diagnostics) replaced by a function
 * that does nothing: diagnostics and its colour libraries were loaded at start and cost the idle
 * agent ~1 MiB until V8's memory reducer ran, 0.2 MiB after (docs/performance.md, round 7);
 * cuttle's own logs never go through them. winston only calls the function it returns.
 */
const silenceWinstonDiagnostics: Plugin = {
  name: 'cuttle-silence-winston-diagnostics',
  setup(bundle) {
    bundle.onResolve({ filter: /^@dabh\/diagnostics$/ }, () => ({
      path: '@dabh/diagnostics',
      namespace: 'cuttle-silenced',
    }));
    bundle.onLoad({ filter: /.*/, namespace: 'cuttle-silenced' }, () => ({
      loader: 'js',
      contents: 'module.exports = function diagnostics() { return function debug() {}; };\n',
    }));
  },
};

/** The build of `cli.ts` into `outdir` (the bundle test builds its probe with the same options). */
export function bundleOptions(outdir: string): BuildOptions {
  return {
    absWorkingDir: ROOT,
    entryPoints: [join(ROOT, 'agent', 'cli.ts')],
    outdir,
    // One level below cli.js, as the tsc build's agent/commands/: `cuttle service` finds cli.js
    // as '../cli.js' from its own file, and version.ts walks up from its file to package.json.
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // Identifiers too, class and function names included: keeping names (esbuild's keepNames)
    // costs the idle agent ~1.2 MiB. Error classes set `name` from `new.target.name`, so an error's
    // name in a stack trace is minified; its message and code are not, and `node
    // --enable-source-maps` maps the frames back to the sources.
    minify: true,
    // For `node --enable-source-maps`; without that flag Node does not read them.
    sourcemap: 'linked',
    sourcesContent: false,
    external: ['bufferutil', 'utf-8-validate'],
    // CommonJS packages require Node's built-in modules; an ES module has no `require` of its own.
    banner: {
      js: "import{createRequire as __cuttleRequire}from'node:module';const require=__cuttleRequire(import.meta.url);",
    },
    plugins: [deferDockerodeFeatures, silenceWinstonDiagnostics],
    logLevel: 'warning',
  };
}

export async function bundle(outdir: string): Promise<void> {
  // Chunks from an earlier build would pile up under their hashed names.
  await rm(join(outdir, 'chunks'), { recursive: true, force: true });
  await build(bundleOptions(outdir));
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await bundle(resolve(process.argv[2] ?? join(ROOT, 'dist', 'agent')));
}
