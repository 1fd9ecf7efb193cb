/** Labels on everything cuttle creates, so an agent can find (and sweep) only its own leftovers. */
export const AGENT_LABEL = 'dev.cuttle.agent';
export const TASK_LABEL = 'dev.cuttle.task';
export const DEMO_LABEL = 'dev.cuttle.demo';

export function containerLabels(agentId: string, taskId: string): Record<string, string> {
  return { [AGENT_LABEL]: agentId, [TASK_LABEL]: taskId };
}

/** An Engine API `label` filter list: every pair must match. */
export function labelFilter(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([key, value]) => `${key}=${value}`);
}

/** On images cuttle builds: what they were built from (`dockerfile` or `git`). */
export const BUILD_SOURCE_LABEL = 'dev.cuttle.build.source';
/** SHA-256 of an inline Dockerfile. */
export const BUILD_DOCKERFILE_SHA_LABEL = 'dev.cuttle.build.dockerfile-sha256';
/** A Git build's URL (credentials masked), ref, resolved commit, context and Dockerfile path. */
export const BUILD_GIT_URL_LABEL = 'dev.cuttle.build.git.url';
export const BUILD_GIT_REF_LABEL = 'dev.cuttle.build.git.ref';
export const BUILD_GIT_COMMIT_LABEL = 'dev.cuttle.build.git.commit';
export const BUILD_GIT_CONTEXT_LABEL = 'dev.cuttle.build.git.context';
export const BUILD_GIT_DOCKERFILE_LABEL = 'dev.cuttle.build.git.dockerfile';
/** On the never-started containers used to read an image's files. */
export const INSPECT_LABEL = 'dev.cuttle.inspect';
