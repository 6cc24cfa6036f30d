#!/usr/bin/env bash
# Runs a command with the test sandboxes up (bubblewrap, a private dockerd, the local
# runbook image), and stops the daemon afterwards whatever happens.
# Usage: test-env/with-sandboxes.sh COMMAND [ARGS...]
set -euo pipefail
export SB=${SB:-/tmp/cloudo-sandbox}
here=$(cd "$(dirname "$0")" && pwd)
"$here/setup-sandbox.sh"
started_here=0
[ -s "$SB/dockerd.pid" ] && started_here=1
cleanup() { [ "$started_here" = 1 ] && "$SB/stop.sh" || true; }
trap cleanup EXIT
# shellcheck disable=SC1091
. "$SB/env.sh"
"$@"
