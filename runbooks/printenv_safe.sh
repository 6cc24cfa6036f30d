#!/usr/bin/env bash
# Prints the runbook contract variables, one per line, sorted. It prints only names the
# contract defines, so it is safe to keep in logs: the runbook environment never holds
# the server's own variables.
set -euo pipefail
env | grep -E '^(CLOUDO|RESOURCE|AKS|MONITOR|ALERT)_[A-Z0-9_]*=' | grep -v '^CLOUDO_PAYLOAD=' | sort
echo "CLOUDO_PAYLOAD bytes: ${#CLOUDO_PAYLOAD}"
