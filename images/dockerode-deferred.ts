/**
 * Stand-ins for the dockerode files that load features cuttle never uses (BuildKit sessions and
 * protobufs, ssh:// engine hosts): each forwards to the real file, required from node_modules on
 * first use. Two users: `dockerode-loader.ts` puts them in the CommonJS module cache before it
 * requires dockerode (the build from tsc, and tests run with tsx), and the esbuild bundle
 * (`scripts/bundle.ts`) compiles them in place of those files. See docs/performance.md, round 3.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The packages whose files are deferred: dockerode, and docker-modem as dockerode requires it. */
export type DockerodePackage = 'dockerode' | 'docker-modem';

/**
 * The installed file that `request` (e.g. `./session`) names in the package's main folder, as the
 * package requires it, or undefined when it does not resolve. docker-modem is resolved from
 * dockerode's location, where it is really installed.
 */
export function resolveDockerodeFile(pkg: DockerodePackage, request: string): string | undefined {
  const dockerode = resolveFrom(fileURLToPath(import.meta.url), 'dockerode');
  const main = pkg === 'dockerode' ? dockerode : resolveFrom(dockerode, 'docker-modem');
  return resolveFrom(main, request);
}

/** For the bundle: the exports of the installed `request` of `pkg`, required on first use. */
export function deferredDockerodeFile(pkg: DockerodePackage, request: string): unknown {
  return deferredExports(`${pkg}/${request}`, () => {
    const file = resolveDockerodeFile(pkg, request);
    if (file === undefined) throw new Error(`cannot find ${request} of ${pkg} in node_modules`);
    return createRequire(file)(file);
  });
}

/** Where `request` resolves from the module file `base`, or undefined when it does not. */
function resolveFrom(base: string | undefined, request: string): string | undefined {
  if (base === undefined) return undefined;
  try {
    return createRequire(base).resolve(request);
  } catch {
    return undefined;
  }
}

/**
 * A stand-in for a module's exports that calls `load` on first use (a call, `new`, or reading a
 * property) and forwards to what it returned from then on. `name` is for error messages.
 */
export function deferredExports(name: string, load: () => unknown): unknown {
  let real: object | undefined;
  const target = (): object => {
    if (real === undefined) {
      const loaded = load();
      if ((typeof loaded !== 'object' && typeof loaded !== 'function') || loaded === null) {
        throw new TypeError(`${name} exports neither an object nor a function`);
      }
      real = loaded;
    }
    return real;
  };
  const callable = (): Callable => {
    const loaded = target();
    if (!isCallable(loaded)) throw new TypeError(`${name} exports no function`);
    return loaded;
  };
  // A function target, so that the stand-in can be called and constructed like the real export.
  return new Proxy(function deferred() {}, {
    apply: (_target, thisArg, args: unknown[]): unknown => Reflect.apply(callable(), thisArg, args),
    construct: (_target, args: unknown[]): object => {
      const Real = callable();
      return new Real(...args);
    },
    get: (_target, property): unknown => Reflect.get(target(), property),
    has: (_target, property) => Reflect.has(target(), property),
  });
}

/** A module's exports that are a function (called, or used as a class). */
type Callable = (new (...args: unknown[]) => object) & ((...args: unknown[]) => unknown);

function isCallable(value: unknown): value is Callable {
  return typeof value === 'function';
}
