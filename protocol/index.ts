// The protocol layer's public surface: message types, validation, codec and errors.
export * from './errors.js';
export * from './messages.js';
export * from './codec.js';
export * from './lines-json.js';
export * from './agent-connection.js';
export * from './blob-stream.js';
export * from './raw-data.js';
