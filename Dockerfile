# cronplan serve: the callback endpoint (POST /api/cron/fire), /healthz, and the local provider's timer loop.
#
#   docker build -t cronplan .
#   docker run -p 8787:8787 -v "$PWD/deploy:/data" cronplan
#
# /data holds cronplan.yaml and, with the default SQLite ledger, .cronplan/state.db. See docs/deploy.md.

# -- build: the wheels of cronplan and the bundled providers, from this checkout --------------------------
FROM python:3.13.9-slim-trixie AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cronplan ./cronplan
COPY schemas ./schemas
COPY providers/nas ./providers/nas
COPY providers/temporal ./providers/temporal
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist . ./providers/nas ./providers/temporal

# -- runtime: only the installed wheels, run by an unprivileged user ---------------------------------------
FROM python:3.13.9-slim-trixie
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    CRONPLAN_CONFIG=/data/cronplan.yaml
RUN groupadd --system --gid 10001 cronplan \
    && useradd --system --uid 10001 --gid cronplan --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin cronplan \
    && mkdir /data \
    && chown cronplan:cronplan /data
COPY --from=build /dist /tmp/dist
# The postgres extra lets the ledger live in PostgreSQL (state: postgresql://... or env:VARNAME).
# DL3013 (pin versions): what is installed are this checkout's own wheel files, so the versions are
# those of the checkout; their dependencies follow the lower bounds in pyproject.toml.
# hadolint ignore=DL3013
RUN set -eu; \
    core="$(echo /tmp/dist/cronplan-*.whl)"; \
    pip install --no-cache-dir "${core}[postgres]" /tmp/dist/cronplan_nas-*.whl \
      /tmp/dist/cronplan_temporal-*.whl; \
    rm -rf /tmp/dist; \
    cronplan --version
# Numeric, so a runtime that checks runAsNonRoot can tell without reading /etc/passwd.
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8787
# slim images have no curl: the check is Python's own urllib; any non-2xx answer or no answer fails it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8787/healthz', timeout=4)"]
ENTRYPOINT ["cronplan"]
# Inside a container 0.0.0.0 is how the published port reaches serve; the status page, /api/status and
# /metrics still answer only with serve.status_token_env set (docs/deploy.md).
CMD ["serve", "--host", "0.0.0.0", "--port", "8787"]
