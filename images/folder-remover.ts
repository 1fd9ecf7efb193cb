/**
 * Removes the contents of a step folder through a short-lived container running as root. Needed
 * when the step wrote files as root and the agent does not run as root (a member of the docker
 * group, as under systemd): the agent itself cannot delete them.
 */
import type { DockerClient } from './docker-client.js';

export interface FolderRemoval {
  /** An image present on the engine that has /bin/sh and rm (the step's own image). */
  image: string;
  folder: string;
  agentId: string;
  taskId: string;
}

export async function removeFolderContentsThroughContainer(
  docker: DockerClient,
  removal: FolderRemoval,
): Promise<number> {
  const id = await docker.createStepContainer({
    image: removal.image,
    agentId: removal.agentId,
    taskId: removal.taskId,
    workFolder: removal.folder,
    user: '0:0',
    // The folder comes as an argument, never inside the script text.
    command: [
      '/bin/sh',
      '-c',
      'rm -rf -- "$1"/* "$1"/.[!.]* "$1"/..?*',
      'cuttle-cleanup',
      removal.folder,
    ],
  });
  try {
    await docker.start(id);
    return (await docker.wait(id)).exitCode;
  } finally {
    await docker.remove(id);
  }
}
