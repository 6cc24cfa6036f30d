#!/usr/bin/env bash
# Template: a remediation that honours dry-run (CLOUDO_DRY_RUN=1 -> say, do not do).
# Copy it, keep the `act` wrapper around every command that changes something.
set -euo pipefail

DRY_RUN="${CLOUDO_DRY_RUN:-0}"

# act CMD ARGS...: runs the command, or only prints it in a dry run.
act() {
  if [ "$DRY_RUN" = "1" ]; then
    printf 'DRY RUN: would run:'
    printf ' %q' "$@"
    printf '\n'
  else
    "$@"
  fi
}

echo "execution ${CLOUDO_EXEC_ID:-?} (${CLOUDO_NAME:-?}), dry run: ${DRY_RUN}"
echo "resource: ${RESOURCE_NAME:-none} in ${RESOURCE_RG:-none}, namespace: ${AKS_NAMESPACE:-none}"

# Read-only checks run in both modes.
echo "checking state..."

# Changes go through act.
act echo "restarting ${RESOURCE_NAME:-the resource}"
