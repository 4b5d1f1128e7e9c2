"""Issue 17 against the emulator, the sink on the dev broker: platform events on status changes, the audit fields
on every written record (partial upserts and Opportunity updates included), and streams-stage dead letters as
Stripe_Sync_Error__c rows."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

from paysync.codec import AvroCodec
from paysync.deadletter import dead_letter
from paysync.topics import DEAD_LETTERS
from sinks.client import SalesforceClient
from sinks.metrics import SinkMetrics
from tests.sink.conftest import make_upsert, wait_for
from tests.sink.test_sink_strict_org import RunningSink, count, salesforce_of, sink_settings

pytestmark = [pytest.mark.kafka]

PAY = ("Stripe_Payment__c", "Stripe_Charge_Id__c")


def payment(ext: str, fields: dict[str, Any], event_id: str, created: int) -> dict[str, Any]:
    upsert = make_upsert(*PAY, ext, fields, event_id=event_id)
    upsert["version"] = f"{created}:0:{event_id}"
    return upsert


def events(emulator: Any) -> list[dict[str, Any]]:
    return list(emulator.handle.admin("GET", "/_emulator/events")["events"])


def composite_calls(emulator: Any) -> int:
    """The sink's counted calls (this test's own SOQL checks are `query` calls, not counted here)."""
    return int(emulator.stats()["calls"].get("composite", 0))


def row(client: SalesforceClient, soql: str) -> dict[str, Any] | None:
    rows = client.query(soql)
    return rows[0] if rows else None


def test_a_status_change_publishes_one_event_in_counted_calls(emulator: Any, sink_env: dict[str, str],
                                                               produce: Any) -> None:
    client = SalesforceClient(salesforce_of(emulator.handle), SinkMetrics())
    running = RunningSink(sink_settings(sink_env))
    try:
        produce([payment("ch_w1", {"Status__c": "Pending", "Amount__c": "12.500", "Currency__c": "USD"}, "evt_1", 100)])
        assert wait_for(lambda: len(events(emulator)) == 1, 30)  # a new record: from nothing to Pending
        assert events(emulator)[0]["Old_Status__c"] is None and events(emulator)[0]["New_Status__c"] == "Pending"
        emulator.handle.admin("POST", "/_emulator/events/clear")
        record_id = row(client, "SELECT Id FROM Stripe_Payment__c WHERE Stripe_Charge_Id__c = 'ch_w1'")["Id"]  # type: ignore[index]
        used = composite_calls(emulator)

        produce([payment("ch_w1", {"Status__c": "Succeeded"}, "evt_2", 200)])  # a partial upsert: status only
        assert wait_for(lambda: len(events(emulator)) == 1, 30)
        [event] = events(emulator)
        assert (event["Object__c"], event["Stripe_Id__c"], event["Old_Status__c"], event["New_Status__c"]) == (
            "Stripe_Payment__c", "ch_w1", "Pending", "Succeeded")
        assert (Decimal(str(event["Amount__c"])), event["Currency__c"], event["Record_Id__c"],
                event["Stripe_Event_Id__c"]) == (Decimal("12.5"), "USD", record_id, "evt_2")  # amount and currency read with the old status
        assert composite_calls(emulator) - used == 3  # read + write, then the event alone once due (no batch came)

        used = composite_calls(emulator)
        produce([payment("ch_w1", {"Status__c": "Succeeded", "Fee__c": "0.300"}, "evt_3", 300)])  # no change
        assert wait_for(lambda: count(client, "SELECT Id FROM Stripe_Payment__c WHERE Fee__c = 0.3") == 1, 30)
        produce([payment("ch_w1", {"Status__c": "Refunded"}, "evt_4", 400)])
        assert wait_for(lambda: len(events(emulator)) == 2, 30)
        assert [e["New_Status__c"] for e in events(emulator)] == ["Succeeded", "Refunded"]  # none for evt_3
        assert events(emulator)[1]["Old_Status__c"] == "Succeeded"
        assert composite_calls(emulator) - used == 2 + 3  # no change: read + write only
    finally:
        running.close()


def test_a_batch_s_event_rides_in_the_next_batch_s_read_call(emulator: Any, sink_env: dict[str, str],
                                                              produce: Any) -> None:
    """Against the emulator's Composite rules: the event of one batch is published inside the read call of the next
    (two calls a batch, not three); the last batch's event goes at stop. The max age is out of reach here."""
    client = SalesforceClient(salesforce_of(emulator.handle), SinkMetrics())
    running = RunningSink(sink_settings(sink_env, sink_event_max_age_s=60))
    stopped = False
    try:
        used = composite_calls(emulator)
        produce([payment("ch_r1", {"Status__c": "Pending", "Currency__c": "USD"}, "evt_r1", 100)])
        assert wait_for(lambda: count(client, "SELECT Id FROM Stripe_Payment__c WHERE Stripe_Charge_Id__c = 'ch_r1'")
                        == 1, 30)
        assert events(emulator) == [] and composite_calls(emulator) - used == 2  # read + write; the event waits
        produce([payment("ch_r2", {"Status__c": "Succeeded", "Currency__c": "USD"}, "evt_r2", 200)])
        assert wait_for(lambda: len(events(emulator)) == 1, 30)
        assert [(e["Stripe_Id__c"], e["New_Status__c"]) for e in events(emulator)] == [("ch_r1", "Pending")]
        assert wait_for(lambda: count(client, "SELECT Id FROM Stripe_Payment__c WHERE Stripe_Charge_Id__c = 'ch_r2'")
                        == 1, 30)
        assert composite_calls(emulator) - used == 4  # two batches, two calls each
        running.close()
        stopped = True
        assert [e["Stripe_Id__c"] for e in events(emulator)] == ["ch_r1", "ch_r2"]  # the last one at stop
        assert composite_calls(emulator) - used == 5
    finally:
        if not stopped:
            running.close()


def test_events_off_reads_and_publishes_nothing(emulator: Any, sink_env: dict[str, str], produce: Any) -> None:
    client = SalesforceClient(salesforce_of(emulator.handle), SinkMetrics())
    running = RunningSink(sink_settings(sink_env, sink_status_events=False))
    try:
        used = composite_calls(emulator)
        produce([payment("ch_off", {"Status__c": "Pending"}, "evt_o", 100)])
        assert wait_for(lambda: count(client, "SELECT Id FROM Stripe_Payment__c WHERE Stripe_Charge_Id__c = 'ch_off'")
                        == 1, 30)
        assert composite_calls(emulator) - used == 1  # the write alone: no read, no publish
        assert events(emulator) == []
    finally:
        running.close()


def test_every_written_record_carries_the_audit_trail(emulator: Any, sink_env: dict[str, str], produce: Any) -> None:
    handle = emulator.handle
    opp = handle.admin("POST", "/_emulator/seed", {"sobject": "Opportunity", "record": {
        "Name": "Deal", "StageName": "Prospecting", "CloseDate": "2030-01-01"}})["id"]
    client = SalesforceClient(salesforce_of(handle), SinkMetrics())
    before = time.time()
    bt = make_upsert("Stripe_Balance_Transaction__c", "Stripe_Balance_Transaction_Id__c", "txn_w1",
                     {"Amount__c": "1.000"})  # from the poller: no Stripe event
    produce([payment("ch_a1", {"Status__c": "Pending"}, "evt_new", 1_700_000_100),
             payment("ch_a1", {"Fee__c": "0.100"}, "evt_old", 1_700_000_000),  # a later partial of an older event
             make_upsert("Opportunity", "Id", opp, {"Stripe_Payment_Status__c": "Pending"}, event_id="evt_opp")
             | {"version": "1700000200:0:evt_opp"}, bt])
    running = RunningSink(sink_settings(sink_env))
    try:
        assert wait_for(lambda: count(client, "SELECT Id FROM Stripe_Balance_Transaction__c") == 1
                        and count(client, "SELECT Id FROM Opportunity WHERE Synced_At__c != null") == 1, 30)
    finally:
        running.close()
    pay = row(client, "SELECT Last_Stripe_Event_Id__c, Last_Stripe_Event_At__c, Synced_At__c, Fee__c "
                      "FROM Stripe_Payment__c WHERE Stripe_Charge_Id__c = 'ch_a1'")
    assert pay is not None and pay["Last_Stripe_Event_Id__c"] == "evt_new"  # the newest event, not the last offset
    assert pay["Last_Stripe_Event_At__c"].startswith("2023-11-14T22:15:00.000")
    opp_row = row(client, f"SELECT Last_Stripe_Event_Id__c, Last_Stripe_Event_At__c, Synced_At__c FROM Opportunity "
                          f"WHERE Id = '{opp}'")
    assert opp_row is not None and opp_row["Last_Stripe_Event_Id__c"] == "evt_opp"
    assert opp_row["Last_Stripe_Event_At__c"].startswith("2023-11-14T22:16:40.000")
    txn = row(client, "SELECT Last_Stripe_Event_Id__c, Synced_At__c FROM Stripe_Balance_Transaction__c")
    assert txn is not None and txn["Last_Stripe_Event_Id__c"] is None  # no event: none invented
    for synced in (pay["Synced_At__c"], opp_row["Synced_At__c"], txn["Synced_At__c"]):
        assert synced and synced[:4] == time.strftime("%Y", time.gmtime(before))


def test_streams_dead_letters_become_sync_error_rows_once(emulator: Any, sink_env: dict[str, str],
                                                           topic_prefix: str) -> None:
    from confluent_kafka import Producer

    from paysync.settings import KafkaConnection

    codec = AvroCodec()
    producer = Producer(KafkaConnection().confluent_config())
    topic = DEAD_LETTERS.full_name(topic_prefix)
    letters = [dead_letter(topic="stripe.events", partition=2, offset=41, stage="streams", error_kind="invalid",
                           error_code="UNKNOWN_STATUS", message="status 'weird'", key=b"ch_1", value=b"{}",
                           event_id="evt_u1", object_id="ch_1"),
               dead_letter(topic="stripe.events", partition=0, offset=7, stage="streams", error_kind="decode",
                           error_code="BAD_MAGIC", message="not Avro", key=None, value=b"\x00"),
               dead_letter(topic="salesforce.upserts", partition=0, offset=3, stage="sink", error_kind="salesforce",
                           error_code="STRING_TOO_LONG", message="x", key=None, value=b"")]
    for letter in letters + letters[:1]:  # the first one twice: one row
        producer.produce(topic, value=codec.encode(DEAD_LETTERS.schema, letter))
    assert producer.flush(30) == 0
    client = SalesforceClient(salesforce_of(emulator.handle), SinkMetrics())
    running = RunningSink(sink_settings(sink_env))
    try:
        assert wait_for(lambda: count(client, "SELECT Id FROM Stripe_Sync_Error__c") == 2, 30)
    finally:
        running.close()
    rows = {r["Sync_Error_Key__c"]: r for r in client.query(
        "SELECT Sync_Error_Key__c, Error_Code__c, Event_Id__c, Object_Id__c, Status__c, Synced_At__c "
        "FROM Stripe_Sync_Error__c")}
    assert set(rows) == {"stripe.events:2:41", "stripe.events:0:7"}  # the sink-stage letter is not re-written
    first = rows["stripe.events:2:41"]
    assert (first["Error_Code__c"], first["Event_Id__c"], first["Object_Id__c"], first["Status__c"]) == (
        "UNKNOWN_STATUS", "evt_u1", "ch_1", "New")
    assert first["Synced_At__c"]


def test_dlq_replay_and_purge_set_the_rows_status(emulator: Any, sink_env: dict[str, str], topic_prefix: str) -> None:
    import io

    from confluent_kafka import Producer

    from ops import dlq
    from paysync.settings import KafkaConnection

    codec = AvroCodec()
    producer = Producer(KafkaConnection().confluent_config())
    letter = dead_letter(topic=f"{topic_prefix}stripe.events", partition=0, offset=5, stage="streams",
                         error_kind="invalid", error_code="UNKNOWN_STATUS", message="status 'weird'", key=b"ch_9",
                         value=b"{}", event_id="evt_r1", object_id="ch_9")
    producer.produce(DEAD_LETTERS.full_name(topic_prefix), value=codec.encode(DEAD_LETTERS.schema, letter), partition=0)
    assert producer.flush(30) == 0
    client = SalesforceClient(salesforce_of(emulator.handle), SinkMetrics())
    key = f"{topic_prefix}stripe.events:0:5"

    def status() -> str | None:
        found = row(client, f"SELECT Status__c FROM Stripe_Sync_Error__c WHERE Sync_Error_Key__c = '{key}'")
        return None if found is None else str(found["Status__c"])

    running = RunningSink(sink_settings(sink_env))
    try:
        assert wait_for(lambda: status() == "New", 30)  # the picklist default: the row write sends no status
        out = io.StringIO()
        assert dlq.main(["replay", "--id", "0:0"], stdout=out) == 0, out.getvalue()
        assert "1 sync error row(s) set to Replayed" in out.getvalue()
        assert wait_for(lambda: status() == "Replayed", 30)
        out = io.StringIO()
        assert dlq.main(["purge", "--through", "0:0"], stdout=out) == 0, out.getvalue()
        assert wait_for(lambda: status() == "Resolved", 30)
    finally:
        running.close()
