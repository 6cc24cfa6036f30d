#!/usr/bin/env bash
# Sandboxes for the test suite, idempotently: installs bubblewrap and docker.io from Debian
# when missing, starts a private dockerd (no bridge, no iptables; there is no systemd here),
# and imports a small runbook image built from the host's own binaries (no registry).
# Writes $SB/env.sh (DOCKER_HOST, CLOUDO_TEST_IMAGE) and $SB/stop.sh.
set -euo pipefail
SB=${SB:-/tmp/cloudo-sandbox}
IMAGE=${IMAGE:-cloudo-runbook-test:3}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$SB"

need=()
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v dockerd >/dev/null || need+=(docker.io)
command -v setpriv >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup-sandbox: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # No init system: keep package scripts from trying to start services.
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

sock="$SB/docker.sock"
export DOCKER_HOST="unix://$sock"
docker_cli() { /usr/bin/docker "$@" 2>/dev/null || docker "$@"; }
if ! curl -sf --unix-socket "$sock" http://d/_ping >/dev/null 2>&1; then
  echo "setup-sandbox: starting dockerd"
  dockerd -H "$DOCKER_HOST" --data-root "$SB/docker-data" --exec-root "$SB/docker-exec" \
    --pidfile "$SB/dockerd.pid" --storage-driver overlay2 \
    --iptables=false --ip6tables=false --bridge=none > "$SB/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do
    curl -sf --unix-socket "$sock" http://d/_ping >/dev/null 2>&1 && break
    sleep 0.5
  done
  if ! curl -sf --unix-socket "$sock" http://d/_ping >/dev/null 2>&1; then
    echo "setup-sandbox: dockerd did not start:"; tail -20 "$SB/dockerd.log"; exit 1
  fi
fi

if ! docker_cli image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "setup-sandbox: building $IMAGE"
  "$here/mk-tiny-rootfs.sh" "$SB/rootfs"
  tar -C "$SB/rootfs" -c . | docker_cli import -c 'ENV PATH=/usr/bin:/bin' -c 'WORKDIR /tmp' - "$IMAGE" >/dev/null
fi

cat > "$SB/env.sh" <<ENV
export DOCKER_HOST=$DOCKER_HOST
export CLOUDO_TEST_IMAGE=$IMAGE
ENV
cat > "$SB/stop.sh" <<STOP
#!/usr/bin/env bash
pid=\$(cat "$SB/dockerd.pid" 2>/dev/null || true)
[ -n "\$pid" ] || exit 0
kill -TERM "\$pid" 2>/dev/null || exit 0
for _ in \$(seq 1 60); do kill -0 "\$pid" 2>/dev/null || exit 0; sleep 0.5; done
kill -KILL "\$pid" 2>/dev/null || true
STOP
chmod +x "$SB/stop.sh"
echo "setup-sandbox: ok (DOCKER_HOST=$DOCKER_HOST, image $IMAGE)"
