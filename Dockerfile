# atlassian-auth-proxy as a container, meant to run as a sidecar next to the app that uses it.
#
# Defaults: listens on the pod's / shared network namespace's loopback (127.0.0.1:8080), so
# only containers sharing that namespace can use it; the token comes from a secret file; the
# confdir, which holds the CA that clients must trust, is a volume the app can mount too.
# See examples/ for docker compose and Kubernetes, and README "Sidecar" for the proxy-auth
# variant that listens on 0.0.0.0.

FROM python:3.13-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY proxy_addon ./proxy_addon
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.13-slim-bookworm
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent proxy \
    && mkdir -p /var/lib/atlassian-auth-proxy \
    && chown proxy:proxy /var/lib/atlassian-auth-proxy

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
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 CMD ["atlassian-auth-proxy", "health"]
ENTRYPOINT ["atlassian-auth-proxy"]
CMD ["run"]
