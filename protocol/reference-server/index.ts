// The reference server's public surface.
export {
  ReferenceServer,
  UnknownTaskError,
  type AgentInfo,
  type AgentDisconnectInfo,
  type ReferenceServerOptions,
  type SubmitInput,
} from './server.js';
export {
  TASK_STATUSES,
  isTerminalStatus,
  type TaskHandle,
  type TaskStatus,
  type TaskSummary,
} from './task-record.js';
export { joinLogLines } from './log-lines.js';
