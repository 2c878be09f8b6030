"""The demo's parts that need no proxy: its throwaway certificates, the masked credentials, the table it prints.

tests/e2e/test_demo.py runs the whole demo as a newcomer would.
"""

from __future__ import annotations

import base64
import ssl

from cryptography import x509

from proxy_addon.commands.demo import Check, make_certificates, masked, render


def test_a_credential_is_shown_with_only_four_characters_of_its_secret():
    value = "Basic " + base64.b64encode(b"someone@example.com:client-held-token").decode()
    assert masked(value) == "Basic base64(someone@example.com:clie…)"
    assert masked(None) == "(none)"
    assert masked("Bearer abc") == "Bearer (not Basic credentials)"


def test_the_stand_ins_certificate_is_for_its_names_and_signed_by_the_demo_ca(tmp_path):
    ca, cert, key = make_certificates(tmp_path, ("acme.atlassian.net", "other.example.test"))
    names = x509.load_pem_x509_certificate(cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert names.value.get_values_for_type(x509.DNSName) == ["acme.atlassian.net", "other.example.test"]
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(ca))
    assert client.get_ca_certs()[0]["subject"] == ((("commonName", "atlassian-auth-proxy demo CA"),),)


def test_each_check_is_a_numbered_table_of_what_was_sent_and_received():
    rows = [("Cookie", "tenant.session.token=client-cookie", "(removed)"), ("TLS SNI", "acme", "acme")]
    title, header, cookie, sni, reply, verdict = render(
        Check("https://acme/x", False, rows, "200", "why"), 2
    ).splitlines()
    assert (title, reply, verdict) == ("2. https://acme/x", "   reply         200", "   FAILED: why")
    assert cookie.startswith("   Cookie        tenant.session.token=client-cookie")
    assert header.index("the site received") == cookie.index("(removed)") == sni.rindex("acme")
