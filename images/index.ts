// The images layer's public surface: the only code in cuttle that talks to the Docker engine.
export {
  DockerClient,
  type BuildImageOptions,
  type ConnectOptions,
  type PullOptions,
  type PullResult,
} from './docker-client.js';
export type {
  ContainerDetails,
  ContainerSummary,
  EngineInfo,
  ImageListEntry,
  ImageSummary,
  PathStat,
  RegistryAuth,
} from './docker-types.js';
export {
  DockerOperationError,
  DockerUnavailableError,
  ImageBuildFailedError,
  ImageForbiddenError,
  ImageIncompatibleError,
  ImageNotFoundError,
  ImagePullFailedError,
  type PullFailureReason,
} from './docker-errors.js';
export {
  ImageResolver,
  imageRequestSecrets,
  registryOf,
  DEFAULT_PULL_ATTEMPTS,
  DEFAULT_PROGRESS_INTERVAL_MS,
  type ImageRequest,
  type ImageResolverOptions,
  type PrepullResult,
  type ResolvedImage,
  type ResolveHooks,
  type RetentionLimits,
} from './image-resolver.js';
export {
  OPEN_IMAGE_POLICY,
  PULL_POLICIES,
  checkImagePolicy,
  imageRefForms,
  isImageAllowed,
  type ImagePolicy,
  type PullPolicy,
} from './image-policy.js';
export {
  checkLibc,
  detectImageLibc,
  inspectImageLibc,
  type DetectedLibc,
  type Libc,
  type LibcReport,
} from './image-libc.js';
export { gitUrlSecrets, redactGitUrl, maskSecrets, resolveGitCommit } from './git-source.js';
export { classifyPullFailure } from './pull-failure.js';
export type { StepContainerSpec } from './step-container-spec.js';
export {
  AGENT_LABEL,
  BUILD_SOURCE_LABEL,
  BUILD_DOCKERFILE_SHA_LABEL,
  BUILD_GIT_COMMIT_LABEL,
  BUILD_GIT_CONTEXT_LABEL,
  BUILD_GIT_DOCKERFILE_LABEL,
  BUILD_GIT_REF_LABEL,
  BUILD_GIT_URL_LABEL,
  DEMO_LABEL,
  INSPECT_LABEL,
  TASK_LABEL,
} from './labels.js';
export {
  DEMO_IMAGE,
  buildBusyboxImage,
  ensureDemoImage,
  type BusyboxImageOptions,
} from './demo-image.js';
export { tarContext, type ContextEntry } from './build-context.js';
export { removeFolderContentsThroughContainer, type FolderRemoval } from './folder-remover.js';
export * from './container-options/index.js';
export {
  HOME_CHECK_TASK,
  checkHomeVisibleToEngine,
  runningInContainer,
  type HomeCheckOptions,
  type HomeCheckResult,
} from './home-mount-check.js';
