// The images layer's public surface: the only code in cuttle that talks to the Docker engine.
export { DockerClient, type BuildImageOptions, type ConnectOptions } from './docker-client.js';
export type {
  ContainerDetails,
  ContainerSummary,
  EngineInfo,
  ImageSummary,
} from './docker-types.js';
export {
  DockerOperationError,
  DockerUnavailableError,
  ImageBuildFailedError,
  ImageNotFoundError,
  ImagePullFailedError,
} from './docker-errors.js';
export type { StepContainerSpec } from './step-container-spec.js';
export { AGENT_LABEL, DEMO_LABEL, TASK_LABEL } from './labels.js';
export {
  DEMO_IMAGE,
  buildBusyboxImage,
  ensureDemoImage,
  type BusyboxImageOptions,
} from './demo-image.js';
export { tarContext, type ContextEntry } from './build-context.js';
