#!/usr/bin/env bash
# Installs Azurite (the Azure Storage emulator) from npm, pinned, under test-env/.azurite.
# Idempotent: does nothing when the pinned version is already there.
set -euo pipefail
AZURITE_VERSION=3.37.0
here=$(cd "$(dirname "$0")" && pwd)
dir="$here/.azurite"
bin="$dir/node_modules/.bin/azurite"
if [ -x "$bin" ] && [ "$("$bin" --version 2>/dev/null)" = "$AZURITE_VERSION" ]; then
  exit 0
fi
command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }
mkdir -p "$dir"
npm install --prefix "$dir" --no-audit --no-fund --silent "azurite@$AZURITE_VERSION"
"$bin" --version
