// The workspace layer's public surface: the agent's home folder and everything kept in it.
export * from './workspace-error.js';
export * from './agent-home.js';
export * from './work-folder.js';
export * from './task-journal.js';
export * from './container-path.js';
export * from './package-cache.js';
export * from './tool-invalid-error.js';
export * from './tool-store.js';
