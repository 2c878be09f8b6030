"""The variables `atlassian-auth-proxy env` exports, for the tests of `env` in and out of a running proxy."""

from __future__ import annotations

EXPORTED = {
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "NODE_EXTRA_CA_CERTS",
    "NODE_USE_ENV_PROXY",
    "JAVA_TOOL_OPTIONS",
}
