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
