/**
 * The systemd unit of the agent. `cuttle service install` writes what `renderUnit` returns; the
 * repository's `systemd/cuttle-agent.service` is `renderUnit(DEFAULT_UNIT_OPTIONS)` (a test keeps
 * the two equal), so packagers can ship the file and the reasons stay next to each line.
 */
export const UNIT_NAME = 'cuttle-agent.service';
export const UNIT_PATH = `/etc/systemd/system/${UNIT_NAME}`;
export const CONFIG_PATH = '/etc/cuttle/agent.json';
export const DEFAULT_SERVICE_USER = 'cuttle';

/**
 * Beyond the grace period, stopping still takes: stopping the steps left (SIGTERM, SIGKILL 10 s
 * later), removing their containers and folders, and up to 5 s for the server to acknowledge the
 * results. A minute covers that with room to spare.
 */
export const STOP_MARGIN_SECONDS = 60;

export interface UnitOptions {
  user: string;
  /** The agent's home: the only path it may write. */
  home: string;
  configPath: string;
  /** The program and arguments that run the cuttle CLI (absolute program path). */
  command: readonly string[];
  /** The agent's grace period; TimeoutStopSec is this plus STOP_MARGIN_SECONDS. */
  graceSeconds: number;
}

export const DEFAULT_UNIT_OPTIONS: UnitOptions = {
  user: DEFAULT_SERVICE_USER,
  home: '/var/lib/cuttle',
  configPath: CONFIG_PATH,
  command: ['/usr/bin/env', 'cuttle'],
  graceSeconds: 600,
};

export function renderUnit(options: UnitOptions): string {
  const exec = [
    ...options.command,
    'agent',
    '--config',
    options.configPath,
    '--log-format',
    'json',
  ];
  return `# The cuttle worker agent, as written by \`cuttle service install\` (see docs/operations.md).
# Change settings in ${options.configPath}; change the unit with \`systemctl edit cuttle-agent\`
# (a drop-in), since \`cuttle service install\` rewrites this file.
[Unit]
Description=cuttle worker agent
Wants=network-online.target
# After, not Requires: the agent outlives engine restarts and reports docker-unavailable meanwhile.
After=network-online.target docker.service

[Service]
# exec, not notify: Node.js cannot send sd_notify's datagram without a native module, and the
# agent's readiness (connected, engine reachable) comes and goes for its whole life, which
# --metrics-listen's /readyz reports. exec (unlike simple) fails the start if the program is
# missing or cannot be run.
Type=exec
User=${options.user}
# The docker group grants the Docker socket (/var/run/docker.sock); the user is also in it.
SupplementaryGroups=docker
ExecStart=${exec.join(' ')}
SyslogIdentifier=cuttle-agent
Restart=always
RestartSec=5
# SIGTERM makes the agent drain: no new tasks; running steps get the grace period (graceSeconds,
# here ${options.graceSeconds} s), then are cancelled. mixed sends SIGTERM to the agent alone, so steps it runs
# on the host are not killed under it; what is left when it exits, or at the timeout, gets
# SIGKILL. Step containers belong to dockerd, not to this unit.
KillSignal=SIGTERM
KillMode=mixed
TimeoutStopSec=${options.graceSeconds + STOP_MARGIN_SECONDS}

# Hardening. The agent needs: its home (read-write), the Docker socket, the network, and its
# config. dockerd, outside this unit's namespaces, bind-mounts each step folder by its host path,
# so the home is the real path, never remapped (no BindPaths=, no TemporaryFileSystem=); steps'
# folders are never under /tmp, so PrivateTmp= hides nothing dockerd needs. Steps run on the
# host (allowHostExecution) inherit all of this: they can write only the home and a private /tmp.
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=${options.home}
PrivateTmp=yes
ProtectHome=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
SystemCallArchitectures=native
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
CapabilityBoundingSet=
# Not MemoryDenyWriteExecute=: Node.js's JIT compiler needs writable, executable memory.

[Install]
WantedBy=multi-user.target
`;
}
