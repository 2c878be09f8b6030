# atlassian-auth-proxy as a container, meant to run as a sidecar next to the app that uses it.
#
# Defaults: listens on the pod's / shared network namespace's loopback (127.0.0.1:8080), so
# only containers sharing that namespace can use it; the token comes from a secret file; the
# confdir, which holds the CA that clients must trust, is a volume the app can mount too.
# See examples/ for docker compose and Kubernetes, and docs/how-to/sidecar.md and containers.md
# for the commands and the proxy-auth variant that listens on 0.0.0.0.
#
# BASE_IMAGE: any image with python3 (>= 3.12) and pip, for build machines that cannot pull
# from a registry (.ci/run builds with a Debian rootfs made by debootstrap).
ARG BASE_IMAGE=python:3.13-slim-bookworm

FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY proxy_addon ./proxy_addon
# With the `otlp` extra: the audit export to an OpenTelemetry collector works in the image as it is; with
# `redis`: replicas share holds, pauses and client windows through ATLASSIAN_PROXY_STATE_URL.
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[otlp,redis]'

FROM ${BASE_IMAGE}
# The wheels come in through a bind mount, so no layer of this image holds them. The user and
# group get a name of their own: Debian bases already have a `proxy` user (uid 13).
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index /wheels/*.whl \
    && groupadd --system --gid 10001 atlassian-auth-proxy \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin atlassian-auth-proxy \
    && mkdir -p /var/lib/atlassian-auth-proxy \
    && chown 10001:10001 /var/lib/atlassian-auth-proxy

# The token *file's path*, not a token: the secret itself is mounted there at run time.
# hadolint ignore=DL3064
ENV ATLASSIAN_PROXY_API_TOKEN_FILE=/run/secrets/atlassian_api_token \
    ATLASSIAN_PROXY_CONFDIR=/var/lib/atlassian-auth-proxy \
    ATLASSIAN_PROXY_LISTEN_HOST=127.0.0.1 \
    ATLASSIAN_PROXY_LISTEN_PORT=8080 \
    ATLASSIAN_PROXY_ADMIN_PORT=8081 \
    ATLASSIAN_PROXY_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1

VOLUME ["/var/lib/atlassian-auth-proxy"]
USER 10001:10001
WORKDIR /var/lib/atlassian-auth-proxy
EXPOSE 8080
HEALTHCHECK --interval=2s --timeout=5s --start-period=30s --retries=3 CMD ["atlassian-auth-proxy", "health", "--live"]
ENTRYPOINT ["atlassian-auth-proxy"]
CMD ["run"]
