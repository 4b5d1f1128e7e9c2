"""`paysync dlq` on the real broker: list with filters, show (decoded, scrubbed), replay once, purge."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ops import dlq
from ops.dlq import DLQ_REPLAY_HEADER
from ops_tools_helpers import produce, read_all, run
from paysync.codec import AvroCodec
from paysync.deadletter import dead_letter, redacted_value
from paysync.topics import DEAD_LETTERS, SALESFORCE_UPSERTS, STRIPE_EVENTS, create_topics

pytestmark = pytest.mark.kafka

CARD = "4242 4242 4242 4242"
SECRET = "sk_test_" + "abcdefgh12345678"


def _upsert(ext: str) -> dict[str, object]:
    return {"sobject": "Stripe_Payment__c", "external_id_field": "Stripe_Charge_Id__c", "external_id": ext,
            "fields": {"Amount__c": "12.34", "Description__c": f"card {CARD}"}, "parents": [],
            "source_event_id": f"evt_{ext}", "version": f"1:0:evt_{ext}"}


@pytest.fixture
def dlq_env(kafka_bootstrap: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Five dead letters across the dead-letter topic's partitions, originals in salesforce.upserts/stripe.events."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("PAYSYNC_TOPIC_PREFIX", topic_prefix)
    monkeypatch.setenv("PAYSYNC_OPS_IDLE_TIMEOUT_S", "20")
    monkeypatch.setenv("PAYSYNC_DLQ_RESOLVED_GROUP", f"{topic_prefix}dlq-resolved")
    create_topics({"bootstrap.servers": kafka_bootstrap}, topic_prefix, partitions=3)
    codec = AvroCodec()
    upserts = SALESFORCE_UPSERTS.full_name(topic_prefix)
    events = STRIPE_EVENTS.full_name(topic_prefix)
    letters = [
        # (dlq partition, original topic, original partition, code, stage, key, value)
        (0, upserts, 2, "STRING_TOO_LONG", "sink", b"Stripe_Payment__c:ch_1", codec.encode("paysync.SalesforceUpsert", _upsert("ch_1"))),
        (0, upserts, 1, "STRING_TOO_LONG", "sink", b"Stripe_Payment__c:ch_2", codec.encode("paysync.SalesforceUpsert", _upsert("ch_2"))),
        (1, events, 0, "BAD_MAGIC", "streams", b"ch_3", b'{"not": "avro", "key": "' + SECRET.encode() + b'"}'),
        (1, upserts, 0, "INVALID_FIELD", "sink", b"Stripe_Payment__c:ch_4", codec.encode("paysync.SalesforceUpsert", _upsert("ch_4"))),
        (2, events, 1, "TRUNCATED", "streams", b"ch_5", b"\xc3\x01\xff"),
    ]
    records = []
    for i, (dpart, topic, opart, code, stage, key, value) in enumerate(letters):
        record = dead_letter(topic=topic, partition=opart, offset=100 + i, stage=stage, error_kind="invalid",
                             error_code=code, message=f"failed {code} for {CARD} with {SECRET}", key=key,
                             value=value, event_id=f"evt_{i}", attempts=3)
        records.append((dpart, key, codec.encode(DEAD_LETTERS.schema, record)))
    produce(kafka_bootstrap, DEAD_LETTERS.full_name(topic_prefix), records)
    return {"bootstrap": kafka_bootstrap, "upserts": upserts, "events": events, "letters": letters}


def _listed(argv: list[str]) -> list[dict[str, object]]:
    code, out, err = run(dlq.main, ["list", "--json", *argv])
    assert code == 0, err
    return json.loads(out)


def test_list_shows_reason_and_origin_and_filters(dlq_env: dict[str, object]) -> None:
    rows = _listed([])
    assert [r["id"] for r in rows] == ["0:0", "0:1", "1:0", "1:1", "2:0"]
    first = rows[0]
    assert first["code"] == "STRING_TOO_LONG" and first["stage"] == "sink" and first["status"] == "open"
    assert first["origin"] == {"topic": dlq_env["upserts"], "partition": 2, "offset": 100}
    assert first["event_id"] == "evt_0" and first["attempts"] == 3
    assert CARD not in first["message"] and SECRET not in first["message"]
    assert [r["id"] for r in _listed(["--code", "STRING_TOO_LONG"])] == ["0:0", "0:1"]
    assert [r["id"] for r in _listed(["--stage", "streams"])] == ["1:0", "2:0"]
    assert _listed(["--since", "2999-01-01T00:00:00Z"]) == []

    code, table, _ = run(dlq.main, ["list", "--code", "BAD_MAGIC"])
    assert code == 0 and "1:0" in table and f"{dlq_env['events']}/0/102" in table and "1 dead letter(s)" in table
    assert SECRET not in table and CARD not in table


def test_show_decodes_avro_originals_and_never_prints_secrets(dlq_env: dict[str, object]) -> None:
    code, out, err = run(dlq.main, ["show", "0:1"])
    assert code == 0, err
    shown = json.loads(out)
    assert shown["original_value"]["format"] == "avro"
    assert shown["original_value"]["record"]["external_id"] == "ch_2"
    assert shown["original_key"] == "Stripe_Payment__c:ch_2"
    assert CARD not in out and SECRET not in out and "[REDACTED-PAN]" in out

    code, out, _ = run(dlq.main, ["show", "1:0"])
    text = json.loads(out)["original_value"]
    assert code == 0 and text["format"] == "text" and text["not_avro"] == "BAD_MAGIC"
    assert SECRET not in out

    code, out, _ = run(dlq.main, ["show", "2:0"])
    assert code == 0 and json.loads(out)["original_value"]["format"] == "binary"
    assert run(dlq.main, ["show", "2:7"])[0] == 1
    assert run(dlq.main, ["show", "seven"])[0] == 1


SYNC_ERROR_KEY = b"Stripe_Sync_Error__c:"


def _redriven(bootstrap: str, topic: str) -> list[Any]:
    """The re-driven copies on `topic`, without the status upserts of the letters' Stripe_Sync_Error__c rows."""
    return [m for m in read_all(bootstrap, topic, [0, 1, 2]) if not (m.key() or b"").startswith(SYNC_ERROR_KEY)]


def test_replay_redrives_selected_letters_once(dlq_env: dict[str, object]) -> None:
    bootstrap, upserts = str(dlq_env["bootstrap"]), str(dlq_env["upserts"])

    code, out, _ = run(dlq.main, ["replay", "--code", "STRING_TOO_LONG", "--dry-run"])
    assert code == 0 and "2 dead letter(s) would be replayed" in out
    assert _redriven(bootstrap, upserts) == []
    assert run(dlq.main, ["replay"])[0] == 1, "replay must be told what to re-drive"

    code, out, err = run(dlq.main, ["replay", "--code", "STRING_TOO_LONG"])
    assert code == 0, err
    assert "2 dead letter(s) replayed" in out
    copies = _redriven(bootstrap, upserts)
    # the dead-letter topic keeps only redacted payloads (issue 18): what is re-driven is the redacted original,
    # still a valid record, never the card number the original carried
    assert sorted((m.partition(), m.key(), m.value()) for m in copies) == sorted(
        (opart, key, redacted_value(value))
        for _, _, opart, code_, _, key, value in dlq_env["letters"] if code_ == "STRING_TOO_LONG"
    )
    assert all(CARD.encode() not in m.value() for m in copies)
    assert {AvroCodec().decode(m.value(), SALESFORCE_UPSERTS.schema)["external_id"] for m in copies} == {"ch_1", "ch_2"}
    assert {dict(m.headers())[DLQ_REPLAY_HEADER].decode().rsplit("/", 1)[1] for m in copies} == {"0:0", "0:1"}
    status_rows = [m for m in read_all(bootstrap, upserts, [0, 1, 2]) if m.key().startswith(SYNC_ERROR_KEY)]
    assert len(status_rows) == 2, "each replayed letter's Stripe_Sync_Error__c row is marked Replayed"

    statuses = {r["id"]: r["status"] for r in _listed([])}
    assert statuses == {"0:0": "replayed", "0:1": "replayed", "1:0": "open", "1:1": "open", "2:0": "open"}

    code, out, _ = run(dlq.main, ["replay", "--code", "STRING_TOO_LONG"])
    assert code == 0 and "0 dead letter(s) replayed" in out and "already replayed" in out
    assert len(_redriven(bootstrap, upserts)) == 2, "a second replay re-drives nothing"

    code, out, _ = run(dlq.main, ["replay", "--id", "0:1", "--force"])
    assert code == 0 and "1 dead letter(s) replayed" in out
    assert len(_redriven(bootstrap, upserts)) == 3

    code, out, _ = run(dlq.main, ["replay", "--all"])
    assert code == 0 and "3 dead letter(s) replayed" in out  # 1:0, 1:1, 2:0 (raw bytes are re-driven as they were)
    assert [m.value() for m in read_all(bootstrap, str(dlq_env["events"]), [0, 1, 2])] != []


def test_purge_marks_resolved_without_deleting(dlq_env: dict[str, object]) -> None:
    code, out, _ = run(dlq.main, ["purge", "--through", "0:0", "--dry-run"])
    assert code == 0 and len(_listed([])) == 5

    code, _, err = run(dlq.main, ["purge", "--through", "0:0"])
    assert code == 0, err
    assert [r["id"] for r in _listed([])] == ["0:1", "1:0", "1:1", "2:0"]
    assert [r["status"] for r in _listed(["--all"])][0] == "resolved"

    assert run(dlq.main, ["replay", "--id", "1:0"])[0] == 0
    code, _, err = run(dlq.main, ["purge", "--replayed"])
    assert code == 0, err
    assert [r["id"] for r in _listed([])] == ["0:1", "1:1", "2:0"]

    code, _, _ = run(dlq.main, ["purge", "--through", "0:0"])  # never moves backwards
    assert [r["id"] for r in _listed([])] == ["0:1", "1:1", "2:0"]

    assert run(dlq.main, ["purge", "--all"])[0] == 0
    assert _listed([]) == []
    assert len(_listed(["--all"])) == 5
