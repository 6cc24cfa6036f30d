#!/usr/bin/env bash
# What `make bench` needs besides the build, from Debian: adnanh/webhook (the side-by-side
# benchmark) and wrk (the compiled load generator of the ingest benchmark). Idempotent.
set -euo pipefail
missing=()
command -v webhook >/dev/null || missing+=(webhook)
command -v wrk >/dev/null || missing+=(wrk)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup-bench: webhook $(webhook -version 2>&1 | head -1); $(wrk -v 2>&1 | head -1)"
