# syntax=docker/dockerfile:1
# Lingtan: one image for every component (migrate, simulators, gateway, ingest, api, dashboard).
#   docker build -t lingtan:latest .
#   docker run --rm lingtan:latest --help
ARG PYTHON_IMAGE=python:3.11-slim

# --- build: install the project and its pinned dependencies into a venv -------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/lingtan
ENV PATH=/opt/lingtan/bin:$PATH
WORKDIR /src
# Only what the package is built from (no .venv, tests or local data in the build).
# README* is a glob so the build does not break while the file does not exist yet.
COPY pyproject.toml README* ./
COPY lingtan ./lingtan
COPY gateway ./gateway
COPY api ./api
COPY dashboard ./dashboard
COPY simulators ./simulators
COPY migrations ./migrations
RUN pip install . && lingtan --help >/dev/null

# --- runtime ------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/lingtan/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LINGTAN_DATA_DIR=/var/lib/lingtan
RUN groupadd --system --gid 10001 lingtan \
 && useradd --system --uid 10001 --gid lingtan --home-dir /var/lib/lingtan --no-create-home \
      --shell /usr/sbin/nologin lingtan \
 && install -d -o lingtan -g lingtan -m 0750 /var/lib/lingtan \
 && install -d -m 0755 /etc/lingtan
COPY --from=build /opt/lingtan /opt/lingtan
USER lingtan:lingtan
WORKDIR /var/lib/lingtan
# api, dashboard (only published where the compose file says so)
EXPOSE 8000 8050
ENTRYPOINT ["lingtan"]
CMD ["--help"]
