#!/usr/bin/env bash
# Installs what the test suite needs, idempotently. Safe to run on every `make test`.
# Today: the runbook interpreters the tests use (bash, python3 from Debian) and the Rust
# components for the lint steps.
set -euo pipefail

need_apt=()
[ -x /usr/bin/bash ] || need_apt+=(bash)
[ -x /usr/bin/python3 ] || need_apt+=(python3)
command -v pkill >/dev/null || need_apt+=(procps)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

if command -v rustup >/dev/null; then
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
  done
fi
echo "setup: ok"
