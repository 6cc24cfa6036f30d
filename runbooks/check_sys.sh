#!/usr/bin/env bash
# Prints a short report of the machine the runbook runs on.
set -euo pipefail
echo "execution: ${CLOUDO_EXEC_ID} (${CLOUDO_NAME})"
echo "host:      $(uname -n) $(uname -sr)"
echo "uptime:    $(cut -d' ' -f1 /proc/uptime) s"
echo "load:      $(cut -d' ' -f1-3 /proc/loadavg)"
echo "memory:    $(awk '/MemAvailable/ {printf "%d MiB available", $2/1024}' /proc/meminfo)"
echo "disk:      $(df -h / | awk 'NR==2 {print $4 " free on /"}')"
