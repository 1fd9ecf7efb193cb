/** `cuttle server`: the reference server as a command, for trying cuttle by hand. */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { parseListenAddress } from '../listen-address.js';
import { withFlagErrors } from '../parse-flags.js';
import { ReferenceServer } from '../../protocol/reference-server/index.js';

const FLAGS = {
  listen: { type: 'string', default: '127.0.0.1:8484' },
  token: { type: 'string' },
  data: { type: 'string', default: './cuttle-server-data' },
} as const;

export async function serverCommand(args: string[]): Promise<number> {
  const { values } = withFlagErrors(FLAGS, () =>
    parseArgs({
      args,
      options: FLAGS,
      strict: true,
    }),
  );
  const { host, port } = parseListenAddress(values.listen, '--listen');
  const token = values.token ?? process.env.CUTTLE_TOKEN ?? randomBytes(16).toString('hex');
  const server = new ReferenceServer({
    token,
    host,
    port,
    dataDir: values.data,
    httpApi: true,
  });
  await server.listen();
  server.on('hello', (hello) =>
    console.log(`agent connected: ${hello.agent.name} (${hello.agent.id})`),
  );
  server.on('disconnect', (info) =>
    console.log(`agent disconnected: ${info.agentId ?? '?'} (${info.code})`),
  );
  console.log(
    `cuttle reference server on ${server.url} (HTTP API ${server.httpUrl}), data in ${values.data}`,
  );
  if (values.token === undefined && process.env.CUTTLE_TOKEN === undefined)
    console.log(`token: ${token}`);
  console.log(`start an agent:  cuttle agent --server ${server.url} --token <token> --home <dir>`);
  console.log(
    `submit a task:   cuttle submit task.json --server ${server.httpUrl} --token <token> --follow`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  return 0;
}
