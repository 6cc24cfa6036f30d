#!/usr/bin/env bash
# Runs a command with Azurite listening on loopback, and stops it afterwards whatever
# happens. Two instances on free ports:
#   - plain http with SharedKey: CLOUDO_TEST_AZURE_CONNECTION_STRING;
#   - https with Entra ID tokens (`--oauth basic`, a throw-away CA made here):
#     CLOUDO_TEST_AZURE_OAUTH_TABLE, CLOUDO_TEST_AZURE_OAUTH_QUEUE, CLOUDO_TEST_AZURE_CA.
# Usage: test-env/with-azurite.sh COMMAND [ARGS...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/setup-azurite.sh"
work=$(mktemp -d /tmp/cloudo-azurite.XXXXXX)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
azurite="$here/.azurite/node_modules/.bin/azurite"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
wait_port() {
  for _ in $(seq 1 150); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  cat "$work"/*.log >&2; echo "azurite did not start" >&2; exit 1
}

bport=$(port); qport=$(port); tport=$(port)
"$azurite" --silent --location "$work/plain" --skipApiVersionCheck \
  --blobHost 127.0.0.1 --blobPort "$bport" --queueHost 127.0.0.1 --queuePort "$qport" \
  --tableHost 127.0.0.1 --tablePort "$tport" >"$work/plain.log" 2>&1 &
pids+=($!)

# A CA and a leaf for 127.0.0.1 (rustls refuses a self-signed CA as the server certificate).
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=cloudo test CA" \
  -keyout "$work/ca.key" -out "$work/ca.pem" >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$work/leaf.key" -out "$work/leaf.csr" >/dev/null 2>&1
printf 'basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$work/leaf.ext"
openssl x509 -req -in "$work/leaf.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
  -days 2 -extfile "$work/leaf.ext" -out "$work/leaf.pem" >/dev/null 2>&1
obport=$(port); oqport=$(port); otport=$(port)
"$azurite" --silent --location "$work/oauth" --skipApiVersionCheck --oauth basic \
  --cert "$work/leaf.pem" --key "$work/leaf.key" \
  --blobHost 127.0.0.1 --blobPort "$obport" --queueHost 127.0.0.1 --queuePort "$oqport" \
  --tableHost 127.0.0.1 --tablePort "$otport" >"$work/oauth.log" 2>&1 &
pids+=($!)

for p in "$qport" "$tport" "$oqport" "$otport"; do wait_port "$p"; done
key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
export CLOUDO_TEST_AZURE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$bport/devstoreaccount1;QueueEndpoint=http://127.0.0.1:$qport/devstoreaccount1;TableEndpoint=http://127.0.0.1:$tport/devstoreaccount1;"
export CLOUDO_TEST_AZURE_OAUTH_TABLE="https://127.0.0.1:$otport/devstoreaccount1"
export CLOUDO_TEST_AZURE_OAUTH_QUEUE="https://127.0.0.1:$oqport/devstoreaccount1"
export CLOUDO_TEST_AZURE_CA="$work/ca.pem"
# The resilience suite starts (and restarts) Azurite instances of its own.
export CLOUDO_TEST_AZURITE="$azurite"
"$@"
