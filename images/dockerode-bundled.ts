/**
 * dockerode as the esbuild bundle loads it (`scripts/bundle.ts` compiles this file in place of
 * `dockerode-loader.ts`): bundled with the rest of the agent, with its BuildKit-session and
 * BuildKit-protobuf files and docker-modem's ssh file replaced at build time by stand-ins that
 * require the installed files from node_modules on first use (`dockerode-deferred.ts`). The
 * CommonJS cache that `dockerode-loader.ts` relies on plays no part in bundled code.
 */
import Dockerode from 'dockerode';

/** dockerode's constructor. */
export const Docker: typeof Dockerode = Dockerode;
