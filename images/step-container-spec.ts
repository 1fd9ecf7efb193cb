import type Docker from 'dockerode';
import { containerLabels } from './labels.js';

/** What the agent asks for when it runs one step in an execution container. */
export interface StepContainerSpec {
  image: string;
  agentId: string;
  taskId: string;
  /** Absolute host path, bind-mounted at the same path and used as the working directory. */
  workFolder: string;
  /** The agent's launcher, e.g. ['/bin/sh', '<workFolder>/.cuttle/launch.sh']. */
  command: string[];
  env?: string[];
  /** More `host:container[:options]` binds, e.g. from the step's container options. */
  extraBinds?: string[];
  /** Images mounted read-only (Engine API 1.48+), e.g. a tool at /cuttle/tool. */
  imageMounts?: { image: string; target: string }[];
  user?: string;
}

export function toCreateOptions(spec: StepContainerSpec): Docker.ContainerCreateOptions {
  return {
    Image: spec.image,
    // What `docker run --entrypoint ""` sends: the engine then runs Cmd alone. Unset or null would
    // inherit the image's ENTRYPOINT (`[]` also works on Docker 20.10; `['']` is the CLI's form).
    Entrypoint: [''],
    Cmd: spec.command,
    Env: spec.env ?? [],
    WorkingDir: spec.workFolder,
    ...(spec.user === undefined ? {} : { User: spec.user }),
    Labels: containerLabels(spec.agentId, spec.taskId),
    Tty: false,
    OpenStdin: false,
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    HostConfig: {
      Binds: [`${spec.workFolder}:${spec.workFolder}`, ...(spec.extraBinds ?? [])],
      ...(spec.imageMounts === undefined || spec.imageMounts.length === 0
        ? {}
        : {
            Mounts: spec.imageMounts.map((m) => ({
              Type: 'image' as const,
              Source: m.image,
              Target: m.target,
              ReadOnly: true,
            })),
          }),
      // The step writes its output to files in the work folder; the default json-file driver
      // would be slow and would put secrets on the engine's disk.
      LogConfig: { Type: 'none', Config: {} },
      // The agent removes containers itself, so it can reattach to them after its own restart.
      AutoRemove: false,
      // An init process as PID 1 passes SIGTERM on to the step: a shell as PID 1 ignores it, and
      // a cancel would always wait the whole grace period for SIGKILL.
      Init: true,
    },
  };
}
