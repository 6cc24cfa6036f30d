#!/usr/bin/env bash
# Builds cloudo-orchestrator, cloudo-worker and cloudo-runbook (tag $1, default dev) from the
# Dockerfile, on the Debian base images/mk-base.sh makes, with the binaries of
# CLOUDO_BIN_DIR (default target/release: make images builds them first). Build steps reach
# Debian and PyPI through the host's network (the legacy builder with --network host: the
# test engine has no bridge).
set -euo pipefail
tag=${1:-dev}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bins=${CLOUDO_BIN_DIR:-target/release}
mkdir -p target/images/bin
for bin in cloudo cloudo-worker; do
  [ -x "$bins/$bin" ] || { echo "images: $bins/$bin is missing (cargo build --release)"; exit 1; }
  # Without debug information (a debug build is several hundred MB of it).
  strip --strip-debug -o "target/images/bin/$bin" "$bins/$bin"
done
./images/mk-base.sh
# PyPI is reached with the host's CA bundle (a TLS-inspecting proxy's CA is in it if any).
cp "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" target/images/build-ca.pem
for target in runbook worker orchestrator; do
  name=cloudo-$target
  echo "images: building $name:$tag"
  start=$(date +%s)
  DOCKER_BUILDKIT=0 docker build -q --network host --target "$target" -t "$name:$tag" . >/dev/null
  size=$(docker image inspect -f '{{.Size}}' "$name:$tag")
  echo "images: $name:$tag $((size / 1048576)) MiB in $(( $(date +%s) - start )) s"
done
