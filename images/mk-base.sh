#!/usr/bin/env bash
# Builds the base image every cloudo image starts from, without any registry: a minimal
# Debian 12 root file system from Debian's own packages (debootstrap), imported into the
# Docker engine of DOCKER_HOST as $BASE_IMAGE. Idempotent: does nothing if it exists.
# Usage: images/mk-base.sh   (make images calls it)
set -euo pipefail
BASE_IMAGE=${BASE_IMAGE:-cloudo-base:bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  echo "mk-base: $BASE_IMAGE is there"; exit 0
fi
command -v debootstrap >/dev/null || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >/dev/null
}
root=$(mktemp -d /tmp/cloudo-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "mk-base: debootstrap bookworm (minbase) from $MIRROR"
debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$MIRROR" >/dev/null
# The same sources as the host, for apt inside later build steps.
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
  "$MIRROR" "$MIRROR" > "$root/etc/apt/sources.list"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
  "$root"/usr/share/{doc,man,info}/*
tar -C "$root" -c . | docker import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV LANG=C.UTF-8' \
  -m "Debian 12 minbase by debootstrap (cloudo images/mk-base.sh)" - "$BASE_IMAGE" >/dev/null
echo "mk-base: $BASE_IMAGE built"
