#!/usr/bin/env bash
# What `make bench` needs besides the build: adnanh/webhook from Debian (the side-by-side
# benchmark). Idempotent.
set -euo pipefail
command -v webhook >/dev/null || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends webhook >/dev/null
}
echo "setup-bench: webhook $(webhook -version 2>&1 | head -1)"
