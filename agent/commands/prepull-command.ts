/** `cuttle prepull IMAGE...`: warms a worker's image cache before its first deployment. */
import { parseArgs } from 'node:util';
import { CuttleError } from '../../protocol/index.js';
import { DockerClient, ImageResolver } from '../../images/index.js';
import { withFlagErrors } from '../parse-flags.js';

const FLAGS = { 'pull-policy': { type: 'string', default: 'if-not-present' } } as const;

export async function prepullCommand(args: string[]): Promise<number> {
  const { values, positionals } = withFlagErrors(FLAGS, () =>
    parseArgs({ args, options: FLAGS, strict: true, allowPositionals: true }),
  );
  const policy = values['pull-policy'];
  if (policy !== 'always' && policy !== 'if-not-present' && policy !== 'never') {
    throw new CuttleError(
      'config-invalid',
      `--pull-policy: "${policy}" is not always, if-not-present or never`,
    );
  }
  if (positionals.length === 0)
    throw new CuttleError(
      'config-invalid',
      'usage: cuttle prepull IMAGE... [--pull-policy always|if-not-present]',
    );
  const docker = DockerClient.connect();
  await docker.engineInfo();
  const resolver = new ImageResolver(
    docker,
    { allowedImages: [], allowedPullPolicies: [] },
    { agentId: 'prepull' },
  );
  let failed = 0;
  for (const result of await resolver.prepull(positionals, policy)) {
    if (result.ok) {
      console.log(
        `${result.ref}: ${result.cached ? 'already present' : 'pulled'}${result.digest === undefined ? '' : ` (${result.digest})`}`,
      );
    } else {
      failed += 1;
      console.error(`${result.ref}: ${result.error.message} [${result.error.code}]`);
    }
  }
  return failed === 0 ? 0 : 1;
}
