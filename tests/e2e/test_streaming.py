"""Bodies stream both ways: 256 MB through the proxy byte-exact, with the proxy's memory flat."""

from __future__ import annotations

import hashlib
import json

import requests

from support import upstream
from support.clients import curl
from support.memory import peak_rss

SIZE = 256 * 1024 * 1024
PEAK_RSS_LIMIT = 150 * 1024 * 1024


def download_exactly(proxy, query: str) -> requests.structures.CaseInsensitiveDict:
    """Stream the stand-in's download through the proxy; check every byte; return the response headers."""
    digest = hashlib.sha256()
    received = 0
    with requests.Session() as session:
        session.trust_env = False
        with session.get(
            f"https://acme.atlassian.net/download?{query}",
            proxies={"https": proxy.url},
            verify=str(proxy.ca_file),
            stream=True,
            timeout=120,
        ) as response:
            assert response.status_code == 200
            for chunk in response.iter_content(1 << 20):
                digest.update(chunk)
                received += len(chunk)
    assert received == SIZE
    assert digest.hexdigest() == upstream.expected_download_digest(SIZE)
    return response.headers


def test_256_mb_down_and_up_byte_exact_with_flat_memory(make_proxy, site, tmp_path):
    proxy = make_proxy()

    assert "content-length" in download_exactly(proxy, f"bytes={SIZE}")

    payload = tmp_path / "upload.bin"
    with payload.open("wb") as f:
        for _ in range(SIZE // upstream.CHUNK):
            f.write(upstream.BLOCK)
    result = curl(
        proxy.url, "https://acme.atlassian.net/upload", proxy.ca_file, "-T", str(payload), "--max-time", "120"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"sha256": upstream.expected_download_digest(SIZE), "bytes": SIZE}
    assert site.record.last().path == "/upload"

    peak = peak_rss(proxy.process.pid)
    print(f"proxy peak RSS after 256 MB down + 256 MB up: {peak / 2**20:.0f} MiB")
    assert peak < PEAK_RSS_LIMIT, f"proxy peak RSS {peak / 2**20:.0f} MiB: bodies are being buffered"


def test_256_mb_chunked_download_of_unknown_length_streams_with_flat_memory(make_proxy, site):
    """No Content-Length: the streaming addon streams it from the first byte (mitmproxy alone would
    switch to streaming after buffering `stream_large_bodies`); either way memory stays flat."""
    proxy = make_proxy()
    assert "content-length" not in download_exactly(proxy, f"bytes={SIZE}&chunked=1")
    peak = peak_rss(proxy.process.pid)
    print(f"proxy peak RSS after a 256 MB chunked download: {peak / 2**20:.0f} MiB")
    assert peak < PEAK_RSS_LIMIT, f"proxy peak RSS {peak / 2**20:.0f} MiB: the chunked body was buffered"
