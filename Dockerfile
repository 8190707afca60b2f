# The Python services of Groundwork: one image, one entry point per service
# (`python -m groundwork_<service>`), because every service shares the same code
# (groundwork_shared, the generated protos) and dependencies. One image builds
# once, loads into kind/minikube once, and its layers are shared by every pod.
#
#   docker build -t groundwork:0.1.0 .
#
# Pinned base: a patch-level tag of the official image (pin its digest in your
# registry mirror for reproducible builds).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# Build tools (for any wheel without a binary for this platform) stay in this stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/groundwork && /opt/groundwork/bin/pip install --upgrade pip
WORKDIR /src
COPY pyproject.toml README.md ./
COPY services ./services
COPY envoy ./envoy
COPY loadtest ./loadtest
COPY proto ./proto
# Only the services' own dependencies: the local runtime's (Envoy, embedded
# Postgres and Redis, supervisor) are the `local` extra, left out here. For the
# chart's load-test Job: docker build --build-arg EXTRAS=load -t groundwork-load:0.1.0 .
# For the operator: docker build --build-arg EXTRAS=operator -t groundwork-operator:0.1.0 .
ARG EXTRAS=""
# xds-protos ships an old copy of opentelemetry/proto/*, and whichever wheel is
# installed last owns those files: put opentelemetry-proto's own back (as the
# Makefile does), or the OTLP exporter fails to import when tracing is on.
RUN /opt/groundwork/bin/pip install --no-compile ".${EXTRAS:+[${EXTRAS}]}" \
 && /opt/groundwork/bin/pip install --no-compile --force-reinstall --no-deps \
      "opentelemetry-proto==$(/opt/groundwork/bin/python -c 'from importlib.metadata import version; print(version("opentelemetry-proto"))')" \
 && /opt/groundwork/bin/python -c 'from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope' \
 && /opt/groundwork/bin/python -m compileall -q /opt/groundwork/lib

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="groundwork" \
      org.opencontainers.image.description="Groundwork's Python services" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed non-root user (the chart's securityContext names the same uid).
RUN groupadd --system --gid 10001 groundwork \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin groundwork
COPY --from=build /opt/groundwork /opt/groundwork
ENV PATH=/opt/groundwork/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
# Works with a read-only root filesystem: bytecode is compiled at build time and
# the chart mounts an emptyDir on /tmp.
ENTRYPOINT []
CMD ["python", "-m", "groundwork_cli.migrate"]
