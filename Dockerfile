# cloudo's container images, one recipe with three targets (make images builds them):
#   orchestrator  `cloudo serve` (API, console, ingest; workers embedded or not)
#   worker        `cloudo-worker`, a standalone worker pool, with bash, python3, az, kubectl
#   runbook       the docker sandbox's default runbook image: the worker's userland, no binary
#
# No registry is needed: BASE is a Debian 12 root file system built from Debian's packages
# (images/mk-base.sh, debootstrap). The binaries are built on the host with cargo (release;
# the tests use debug ones) and staged by images/build.sh in target/images/bin: Debian 12's
# Rust is older than the project's minimum, so no Rust toolchain is installed in an image.
#
# Where the tools come from: bash, python3, ca-certificates and kubectl (Debian's
# kubernetes-client) are Debian packages; az is azure-cli from PyPI, in its own virtual
# environment. kubelogin is in none of the registries this project may use (Debian, PyPI,
# npm) and is not included: runbooks do not need it, the kubeconfig cloudo writes carries a
# token (docs/runbooks.md).
ARG BASE=cloudo-base:bookworm
ARG AZURE_CLI_VERSION=2.91.0

FROM ${BASE} AS tools
ARG AZURE_CLI_VERSION
# The build host's CA bundle, for PyPI behind a TLS-inspecting proxy (this stage only: the
# images ship Debian's CA certificates).
COPY target/images/build-ca.pem /tmp/build-ca.pem
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      python3 python3-venv kubernetes-client \
 && python3 -m venv /opt/az \
 && /opt/az/bin/pip install --no-cache-dir -q --cert /tmp/build-ca.pem "azure-cli==${AZURE_CLI_VERSION}" \
 && find /opt/az -name __pycache__ -prune -exec rm -rf {} + \
 && rm -rf /var/lib/apt/lists/*

# What runbooks find: bash, python3, coreutils, az, kubectl.
FROM ${BASE} AS userland
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      bash python3 ca-certificates openssh-client \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /usr/share/doc/* /usr/share/man/*
COPY --from=tools /opt/az /opt/az
COPY --from=tools /usr/bin/kubectl /usr/bin/kubectl
RUN ln -s /opt/az/bin/az /usr/local/bin/az \
 && az version --output none && kubectl version --client >/dev/null 2>&1

FROM userland AS runbook
LABEL org.opencontainers.image.title="cloudo-runbook" \
      org.opencontainers.image.description="The docker sandbox's runbook image: bash, python3, az, kubectl" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /tmp
USER 65534:65534

FROM userland AS worker
LABEL org.opencontainers.image.title="cloudo-worker" \
      org.opencontainers.image.description="A standalone cloudo worker pool" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY target/images/bin/cloudo-worker /usr/local/bin/cloudo-worker
RUN useradd --system --uid 10001 --home-dir /var/lib/cloudo --create-home cloudo
USER 10001:10001
WORKDIR /var/lib/cloudo
ENV CLOUDO_METRICS_LISTEN=0.0.0.0:9102
EXPOSE 9102
# The worker's only HTTP endpoint is its metrics (on the port CLOUDO_METRICS_LISTEN names):
# up means it is serving.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/metrics' % os.environ['CLOUDO_METRICS_LISTEN'].rsplit(':', 1)[1], timeout=4)"]
ENTRYPOINT ["/usr/local/bin/cloudo-worker"]

FROM ${BASE} AS orchestrator
LABEL org.opencontainers.image.title="cloudo" \
      org.opencontainers.image.description="The cloudo orchestrator: API, console, ingest" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY target/images/bin/cloudo /usr/local/bin/cloudo
# ssh: runbook repositories at ssh:// addresses (git over the system's OpenSSH client).
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openssh-client \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /usr/share/doc/* /usr/share/man/*
RUN useradd --system --uid 10001 --home-dir /var/lib/cloudo --create-home cloudo
USER 10001:10001
WORKDIR /var/lib/cloudo
# The address `cloudo serve` listens on (and the health check asks).
ENV CLOUDO_LISTEN=0.0.0.0:7071
EXPOSE 7071
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${CLOUDO_LISTEN##*:} && printf 'GET /api/healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/local/bin/cloudo"]
CMD ["serve"]
