/**
 * The agent's systemd unit as join configs for mutable hosts install it: node-agent/packaging/systemd/flexnode-agent.service
 * without its comments (which explain each directive there). A test keeps the two equal.
 */
export const AGENT_UNIT = `[Unit]
Description=flexnode agent: runs the onboarding steps this node receives from the flexnode service
Wants=network-online.target
After=network-online.target
Before=kubelet.service
StartLimitIntervalSec=0

[Service]
Type=exec
ExecStart=/opt/flexnode/bin/flexnode-agent run
Restart=on-failure
RestartSec=10s
RestartPreventExitStatus=6 77 78
TimeoutStopSec=30s
SyslogIdentifier=flexnode-agent
Environment=NODE_OPTIONS=--max-semi-space-size=1

NoNewPrivileges=yes
CapabilityBoundingSet=CAP_SYS_MODULE CAP_SYS_ADMIN CAP_NET_ADMIN CAP_DAC_OVERRIDE CAP_CHOWN CAP_FOWNER
RestrictSUIDSGID=yes
LockPersonality=yes
RestrictRealtime=yes
SystemCallArchitectures=native
SystemCallFilter=~@clock @cpu-emulation @debug @obsolete @raw-io @reboot @swap
SystemCallErrorNumber=EPERM
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK

[Install]
WantedBy=multi-user.target
`;
