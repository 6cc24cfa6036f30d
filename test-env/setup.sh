#!/usr/bin/env bash
# Installs what the build and the test suite need, idempotently. Safe to run on every
# `make run` / `make test`: the runbook interpreters (bash, python3), git, OpenSSH (runbook
# repositories over ssh), and the Rust components for the lint steps.
set -euo pipefail

need_apt=()
[ -x /usr/bin/bash ] || need_apt+=(bash)
[ -x /usr/bin/python3 ] || need_apt+=(python3)
command -v pkill >/dev/null || need_apt+=(procps)
# git: the runbook-repository tests (and git http-backend for smart HTTP).
command -v git >/dev/null || need_apt+=(git)
# ssh:// runbook repositories: the worker runs the system's ssh; the test serves a
# repository with a real sshd on loopback.
command -v ssh >/dev/null || need_apt+=(openssh-client)
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
# The test CA of the HTTPS Azurite (test-env/with-azurite.sh).
command -v openssl >/dev/null || need_apt+=(openssl)
# The console's browser tests: headless Chromium driven over WebDriver.
[ -x /usr/lib/chromium/chromium ] || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
fc-list 2>/dev/null | grep -qi dejavu || need_apt+=(fonts-dejavu-core)
# kubectl: the AKS access test's runbook drives a fake Kubernetes API with it (Debian's
# kubernetes-client when no kubectl is installed).
command -v kubectl >/dev/null || need_apt+=(kubernetes-client)
# pip for the runbooks' python3 (the Azure access test's runbook uses azure-identity).
/usr/bin/python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)

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
# The metrics test parses /metrics with Prometheus' own Python parser; the OpenAPI test
# validates the document with openapi-spec-validator (pinned, from PyPI).
if ! python3 -c 'import prometheus_client, openapi_spec_validator' 2>/dev/null; then
  echo "setup: installing prometheus-client and openapi-spec-validator from PyPI"
  python3 -m pip install -q --break-system-packages \
    prometheus-client==0.26.0 openapi-spec-validator==0.9.0
fi
# A runbook of the Azure access test uses the Azure SDK's azure-identity, with the python3
# runbooks run with (Debian's, in the runbook PATH).
if ! /usr/bin/python3 -c 'import azure.identity' 2>/dev/null; then
  echo "setup: installing azure-identity for /usr/bin/python3 from PyPI"
  /usr/bin/python3 -m pip install -q --break-system-packages azure-identity==1.27.0
fi
# The Terraform module's checks (orchestrator/tests/iac.rs): python-hcl2 parses every .tf,
# checkov scans the module; each pinned, from PyPI, in a virtual environment of its own
# (checkov brings a fork of hcl2 under the same module name).
iac=${CLOUDO_IAC_VENV:-$HOME/.cache/cloudo-test}
if [ "$("$iac/hcl-venv/bin/python" -c 'import hcl2, importlib.metadata as m; print(m.version("python-hcl2"))' 2>/dev/null)" != 8.1.4 ]; then
  echo "setup: installing python-hcl2 8.1.4 from PyPI"
  rm -rf "$iac/hcl-venv" && python3 -m venv "$iac/hcl-venv"
  "$iac/hcl-venv/bin/pip" install -q python-hcl2==8.1.4
fi
if [ "$("$iac/checkov-venv/bin/checkov" --version 2>/dev/null)" != 3.3.30 ]; then
  echo "setup: installing checkov 3.3.30 from PyPI"
  rm -rf "$iac/checkov-venv" && python3 -m venv "$iac/checkov-venv"
  "$iac/checkov-venv/bin/pip" install -q checkov==3.3.30
fi
# schemathesis, for the resilience suite's run against /api/openapi.json (tests/chaos).
if [ "$("$iac/st-venv/bin/schemathesis" --version 2>/dev/null)" != "schemathesis, version 4.32.5" ]; then
  echo "setup: installing schemathesis 4.32.5 from PyPI"
  rm -rf "$iac/st-venv" && python3 -m venv "$iac/st-venv"
  "$iac/st-venv/bin/pip" install -q schemathesis==4.32.5
fi
# adnanh/webhook from Debian, for the side-by-side benchmark (make test runs it with tiny
# counts).
"$(dirname "$0")/setup-bench.sh" >/dev/null
# Azurite (the Azure Storage emulator), pinned, from npm.
"$(dirname "$0")/setup-azurite.sh" >/dev/null
echo "setup: ok"
