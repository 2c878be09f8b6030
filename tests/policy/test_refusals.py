"""The one table of the proxy's own answers: every refusing decision has its answer, and each text is one line."""

from __future__ import annotations

import re
from string import Formatter

import pytest

from proxy_addon.policy.record import Decision
from proxy_addon.policy.refusals import REFUSAL_OF, REFUSALS, Refusal, message


def test_every_refusing_decision_has_its_own_answer_recording_it():
    answered = {Decision.BACKED_OFF, Decision.RATE_LIMIT_HOLD, Decision.QUEUE_TIMEOUT}
    refusing = {d for d in Decision if d.startswith("refused-") or d in answered}
    assert set(REFUSAL_OF) == refusing
    for decision, refusal in REFUSAL_OF.items():
        assert REFUSALS[refusal].decision is decision, refusal
    assert set(REFUSALS) == set(Refusal), "every refusal has its entry"


HEADER_FACTS = {"retry_after", "allowed", "reason"}
"""What a header of the proxy's answers may carry: facts the proxy makes (a pause, its allowed methods) and the
site's `RateLimit-Reason` (a short token, `policy.holds.reason_of`), never a client's text."""


def test_every_answer_is_one_line_naming_no_placeholder_once_its_facts_are_given():
    for refusal, reply in REFUSALS.items():
        fields = [(name, spec) for _, name, spec, _ in Formatter().parse(reply.template) if name]
        facts = {name: 1.5 if spec else f"<{name}>" for name, spec in fields}
        text = message(refusal, **facts)
        assert "\n" not in text, refusal
        assert "{" not in text, refusal
        assert 400 <= reply.status < 600, refusal
        for _, value in reply.headers:
            assert set(re.findall(r"\{(\w+)\}", value)) <= HEADER_FACTS, refusal


def test_a_fact_its_template_names_is_required():
    with pytest.raises(KeyError):
        message(Refusal.CLEARTEXT)
    assert message(Refusal.CLEARTEXT, host="acme.atlassian.net") == (
        "refused to send credentials over plain http to acme.atlassian.net: use https://"
    )


def test_a_rejected_client_secret_is_a_502_whose_json_message_begins_with_the_site():
    reply = REFUSALS[Refusal.CLIENT_CREDENTIALS_REJECTED]
    assert (reply.status, reply.error, reply.named) == (502, "client_credentials_rejected", False)
    text = message(
        Refusal.CLIENT_CREDENTIALS_REJECTED,
        site="bot",
        token_host="auth.atlassian.com",
        why="HTTP 401 invalid_client",
        retry_every=30,
    )
    assert text.startswith("site bot: auth.atlassian.com rejected the client credentials (HTTP 401 invalid_client)")
    assert REFUSAL_OF[Decision.CLIENT_CREDENTIALS_REJECTED] is Refusal.CLIENT_CREDENTIALS_REJECTED
    assert REFUSAL_OF[Decision.MINT_FAILED] is Refusal.MINT_FAILED
