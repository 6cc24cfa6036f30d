#!/usr/bin/env bash
# Runs a command with Azurite listening on loopback (blob/queue/table on free ports), and
# stops it afterwards whatever happens. Exports CLOUDO_TEST_AZURE_CONNECTION_STRING.
# Usage: test-env/with-azurite.sh COMMAND [ARGS...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/setup-azurite.sh"
work=$(mktemp -d /tmp/cloudo-azurite.XXXXXX)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
bport=$(port); qport=$(port); tport=$(port)
"$here/.azurite/node_modules/.bin/azurite" --silent --location "$work" --skipApiVersionCheck \
  --blobHost 127.0.0.1 --blobPort "$bport" --queueHost 127.0.0.1 --queuePort "$qport" \
  --tableHost 127.0.0.1 --tablePort "$tport" >"$work/azurite.log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$tport") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$qport") 2>/dev/null; then
    break
  fi
  kill -0 "$pid" 2>/dev/null || { cat "$work/azurite.log"; echo "azurite did not start" >&2; exit 1; }
  sleep 0.1
done
key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
export CLOUDO_TEST_AZURE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$bport/devstoreaccount1;QueueEndpoint=http://127.0.0.1:$qport/devstoreaccount1;TableEndpoint=http://127.0.0.1:$tport/devstoreaccount1;"
"$@"
