"""The API token as hazardous material: wrapped when read, checked without echoing it, one Authorization value."""

from __future__ import annotations

import base64

import pytest

from proxy_addon.policy.tokens import TokenFormatError, authorization_value, parse_client_secret, parse_token

TOKEN = "Ab3dE6gH9jK2mN5pQ8sT1vWx"


def test_a_token_is_wrapped_without_its_surrounding_whitespace():
    token = parse_token(f"\n  {TOKEN}\r\n")
    assert token.get_secret_value() == TOKEN
    assert TOKEN not in repr(token)
    assert TOKEN not in str(token)


@pytest.mark.parametrize(
    ("text", "why"), [("", "is empty"), ("  \n", "is empty"), ("ATATT3x secret-part", "never has")]
)
def test_a_token_that_cannot_be_one_is_refused_without_echoing_it(text, why):
    with pytest.raises(TokenFormatError, match=why) as raised:
        parse_token(text)
    assert "secret-part" not in str(raised.value)


def test_the_authorization_value_is_basic_of_user_and_token_or_bearer():
    token = parse_token(TOKEN)
    basic = authorization_value("me@example.test", token)
    assert basic.get_secret_value() == "Basic " + base64.b64encode(f"me@example.test:{TOKEN}".encode()).decode()
    assert TOKEN not in repr(basic)
    assert authorization_value("ignored", token, bearer=True).get_secret_value() == f"Bearer {TOKEN}"


def test_a_client_secret_is_wrapped_and_one_that_cannot_be_one_is_refused_without_echoing_it():
    assert parse_client_secret("  s3cr3t!#$%&'()*+,-./:;<=>?@[]^_`{|}~\n").get_secret_value() == (
        "s3cr3t!#$%&'()*+,-./:;<=>?@[]^_`{|}~"
    )
    for text in ("", "   ", "two words", "caf\u00e9-secret", "tab\tinside"):
        with pytest.raises(TokenFormatError) as raised:
            parse_client_secret(text)
        assert text.strip() == "" or text not in str(raised.value)
