"""The flow record: one typed place in `flow.metadata` that every hook reads and writes, and that still serializes."""

from __future__ import annotations

import json

from proxy_addon.policy.record import METADATA_KEY, Decision, FlowRecord


def test_the_record_is_made_once_and_found_again():
    metadata: dict = {}
    record = FlowRecord.of(metadata)
    assert FlowRecord.of(metadata) is record
    assert metadata == {METADATA_KEY: record}


def test_unset_facts_read_as_their_defaults():
    record = FlowRecord.of({})
    assert (record.user, record.site, record.host, record.stamp) == (None, None, None, None)
    assert (record.auth_failed, record.timed_out, record.held) == (False, False, False)
    assert record.decision is Decision.NONE


def test_a_record_saved_as_plain_values_is_typed_again_when_loaded():
    record = FlowRecord.of({})
    record.user, record.site, record.decision, record.held = "agent", "acme", Decision.OUT_OF_BOUNDS, True
    saved = json.loads(json.dumps({METADATA_KEY: record}))
    loaded = FlowRecord.of(saved)
    assert isinstance(loaded, FlowRecord)
    assert (loaded.user, loaded.site, loaded.held) == ("agent", "acme", True)
    assert loaded.decision is Decision.OUT_OF_BOUNDS


def test_a_foreign_value_under_the_key_becomes_an_empty_record():
    metadata = {METADATA_KEY: "not a record"}
    assert FlowRecord.of(metadata).decision is Decision.NONE
    assert isinstance(metadata[METADATA_KEY], FlowRecord)
