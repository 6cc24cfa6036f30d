#!/usr/bin/env bash
# A local environment like an Azure install, without Docker: Azurite (npm), one orchestrator
# (`cloudo serve --backend azure`, no in-process workers) and two standalone worker pools
# (`local`: test, test-2; `python`: test-3) with the example runbooks. Authentication is off
# (--dev-no-auth): it is for trying things on a laptop.
#   test-env/local-env.sh start   (make test-env-start)
#   test-env/local-env.sh stop    (make test-env-stop)
# Ports: CLOUDO_TEST_ENV_PORT (default 7071) and three free ones for Azurite. State lives in
# CLOUDO_TEST_ENV_DIR (default test-env/.run). Binaries: CLOUDO_BIN_DIR (default target/debug).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
run=${CLOUDO_TEST_ENV_DIR:-$here/.run}
port=${CLOUDO_TEST_ENV_PORT:-7071}
bin=${CLOUDO_BIN_DIR:-$root/target/debug}

# Gone: no such process, or only its zombie (its parent has not reaped it yet).
gone() { [ ! -e "/proc/$1/stat" ] || sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | grep -q '^Z'; }

stop() {
  [ -f "$run/pids" ] || { echo "test-env: not running"; return 0; }
  # Workers first (they drain), then the orchestrator, then Azurite.
  tac "$run/pids" | while read -r name pid; do
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 100); do gone "$pid" && break; sleep 0.1; done
    if ! gone "$pid"; then
      kill -KILL "$pid" 2>/dev/null || true
      # SIGKILL is not instant either: wait until it has exited.
      for _ in $(seq 1 50); do gone "$pid" && break; sleep 0.1; done
    fi
    echo "test-env: stopped $name"
  done
  # Only what start made (it marks the folder): CLOUDO_TEST_ENV_DIR may name any folder.
  [ -f "$run/.cloudo-test-env" ] && rm -rf "$run"
  return 0
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {
  for _ in $(seq 1 200); do
    curl -sf "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "test-env: $2 did not start; its log:"; tail -20 "$run/$2.log"; stop; exit 1
}
wait_port() {
  for _ in $(seq 1 150); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "test-env: azurite did not start"; tail -20 "$run/azurite.log"; stop; exit 1
}

start() {
  [ -f "$run/pids" ] && { echo "test-env: already running ($run); make test-env-stop first"; exit 1; }
  for b in cloudo cloudo-worker; do
    [ -x "$bin/$b" ] || { echo "test-env: $bin/$b is missing (cargo build)"; exit 1; }
  done
  "$here/setup-azurite.sh" >/dev/null
  [ -e "$run" ] && [ -n "$(ls -A "$run" 2>/dev/null)" ] && {
    echo "test-env: $run exists and is not empty; choose another CLOUDO_TEST_ENV_DIR"; exit 1; }
  mkdir -p "$run"
  : > "$run/.cloudo-test-env"
  : > "$run/pids"
  bport=$(free_port); qport=$(free_port); tport=$(free_port)
  "$here/.azurite/node_modules/.bin/azurite" --silent --location "$run/azurite" --skipApiVersionCheck \
    --blobHost 127.0.0.1 --blobPort "$bport" --queueHost 127.0.0.1 --queuePort "$qport" \
    --tableHost 127.0.0.1 --tablePort "$tport" >"$run/azurite.log" 2>&1 &
  echo "azurite $!" >> "$run/pids"
  wait_port "$qport"; wait_port "$tport"
  key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
  export CLOUDO_AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;QueueEndpoint=http://127.0.0.1:$qport/devstoreaccount1;TableEndpoint=http://127.0.0.1:$tport/devstoreaccount1;"

  "$bin/cloudo" serve --listen "127.0.0.1:$port" --backend azure --data-dir "$run/orchestrator" \
    --catalog "$here/catalog.json" --runbooks "$root/runbooks" --worker-pools none --dev-no-auth \
    >"$run/orchestrator.log" 2>&1 &
  echo "orchestrator $!" >> "$run/pids"
  wait_http "http://127.0.0.1:$port/api/readyz" orchestrator

  for pool in local python; do
    CLOUDO_WORKER_KEY="test-env-$pool" "$bin/cloudo-worker" --pool "$pool" \
      --orchestrator "http://127.0.0.1:$port" --backend azure --data-dir "$run/worker-$pool" \
      --runbooks "$root/runbooks" --sandbox process >"$run/worker-$pool.log" 2>&1 &
    echo "worker-$pool $!" >> "$run/pids"
  done
  for _ in $(seq 1 100); do
    n=$(curl -sf "http://127.0.0.1:$port/api/workers" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["workers"]))' 2>/dev/null || echo 0)
    [ "$n" -ge 2 ] && break
    sleep 0.1
  done
  cat <<MSG
test-env: running (state and logs in $run)
  orchestrator  http://127.0.0.1:$port  (authentication off)
  worker pools  local (test, test-2), python (test-3)
  azurite       queues :$qport, tables :$tport

Try:
  curl 'http://127.0.0.1:$port/api/Trigger?id=test'
  curl 'http://127.0.0.1:$port/api/executions/<exec_id>?wait=10'
  open http://127.0.0.1:$port/            (the console)
  make test-env-stop
MSG
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop"; exit 2 ;;
esac
