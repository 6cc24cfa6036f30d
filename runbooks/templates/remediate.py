#!/usr/bin/env python3
"""Template: a remediation that honours dry-run (CLOUDO_DRY_RUN=1 -> say, do not do).

Copy it, keep every change behind `act`."""
import os
import shlex
import subprocess
import sys

DRY_RUN = os.environ.get("CLOUDO_DRY_RUN", "0") == "1"


def act(*cmd: str) -> None:
    """Runs the command, or only prints it in a dry run."""
    if DRY_RUN:
        print("DRY RUN: would run: " + " ".join(shlex.quote(c) for c in cmd), flush=True)
        return
    subprocess.run(cmd, check=True)


def main() -> int:
    env = os.environ.get
    print(f"execution {env('CLOUDO_EXEC_ID', '?')} ({env('CLOUDO_NAME', '?')}), dry run: {int(DRY_RUN)}")
    print(f"resource: {env('RESOURCE_NAME') or 'none'} in {env('RESOURCE_RG') or 'none'}, "
          f"namespace: {env('AKS_NAMESPACE') or 'none'}")
    # Read-only checks run in both modes.
    print("checking state...", flush=True)
    # Changes go through act.
    act("echo", f"restarting {env('RESOURCE_NAME') or 'the resource'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
