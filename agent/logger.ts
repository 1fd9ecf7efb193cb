/**
 * The agent's own log: winston to stdout, `text` for terminals and `json` for journald and log
 * shippers. Callers pass context (taskId, containerId) as metadata; secrets are never passed.
 */
import winston from 'winston';

export type Logger = winston.Logger;

export function createLogger(options: { level: string; format: 'text' | 'json' }): Logger {
  const format =
    options.format === 'json'
      ? winston.format.combine(winston.format.timestamp(), winston.format.json())
      : winston.format.combine(
          winston.format.timestamp(),
          winston.format.printf((info) => {
            const { level, message, timestamp, ...meta } = info;
            const context = Object.entries(meta)
              .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
              .join(' ');
            return `${String(timestamp)} ${level.padEnd(5)} ${String(message)}${context === '' ? '' : ` ${context}`}`;
          }),
        );
  return winston.createLogger({
    level: options.level,
    format,
    transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn'] })],
  });
}

/** A logger that drops everything, for embedded use where the caller prints its own output. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console()] });
}
