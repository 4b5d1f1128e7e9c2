"""The sink on the real broker against the Salesforce emulator with its fault knobs on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from sinks.client import CallError, SalesforceClient
from sinks.metrics import SinkMetrics
from sinks.settings import SalesforceSettings

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

EXT = {"Account": "Stripe_Customer_Id__c", "Stripe_Payment__c": "Stripe_Charge_Id__c",
       "Stripe_Refund__c": "Stripe_Refund_Id__c"}


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.3) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def upsert(sobject: str, ext_id: str, fields: dict[str, Any], parents: list[dict[str, str]] | None = None,
           event_id: str | None = None) -> dict[str, Any]:
    return {
        "sobject": sobject, "external_id_field": EXT[sobject], "external_id": ext_id, "fields": fields,
        "parents": parents or [], "source_event_id": event_id or f"evt_{ext_id}", "version": "1:0:evt",
        "origin_topic": "stripe.events", "origin_partition": 0, "origin_offset": 0,
        "ingested_at": int(time.time() * 1000),
    }


def parent(rel: str, sobject: str, ext_id: str) -> dict[str, str]:
    return {"relationship": rel, "sobject": sobject, "external_id_field": EXT[sobject], "external_id": ext_id}


def workload(n_customers: int, tag: str) -> tuple[list[dict[str, Any]], dict[tuple[str, str], dict[str, Any]]]:
    """Accounts, payments (two partial upserts each: status, then fee/net), refunds; children sometimes first."""
    msgs: list[dict[str, Any]] = []
    expected: dict[tuple[str, str], dict[str, Any]] = {}
    for i in range(n_customers):
        cus, ch, re_ = f"cus_{tag}{i}", f"ch_{tag}{i}", f"re_{tag}{i}"
        acct = upsert("Account", cus, {"Name": f"Customer {i}", "Livemode__c": False})
        pay1 = upsert("Stripe_Payment__c", ch, {"Amount__c": f"{i}.50", "Currency__c": "USD", "Status__c": "Pending"},
                      [parent("Account__r", "Account", cus)])
        pay2 = upsert("Stripe_Payment__c", ch, {"Status__c": "Succeeded", "Fee__c": "0.30"})
        refund = upsert("Stripe_Refund__c", re_, {"Amount__c": "1.00", "Status__c": "Succeeded"},
                        [parent("Payment__r", "Stripe_Payment__c", ch)])
        msgs += [refund, pay1, acct, pay2] if i % 5 == 0 else [acct, pay1, pay2, refund]
        expected[("Account", cus)] = {"Name": f"Customer {i}"}
        expected[("Stripe_Payment__c", ch)] = {"Amount__c": f"{i}.50", "Status__c": "Succeeded", "Fee__c": "0.30",
                                               "Account__r": cus}
        expected[("Stripe_Refund__c", re_)] = {"Status__c": "Succeeded", "Payment__r": ch}
    return msgs, expected


def client_for(env: dict[str, str]) -> SalesforceClient:
    return SalesforceClient(SalesforceSettings(**{k.removeprefix("PAYSYNC_").lower(): v for k, v in env.items()
                                                  if k.startswith("PAYSYNC_SALESFORCE")}), SinkMetrics())


def count(client: SalesforceClient, sobject: str, tag: str) -> int:
    """Rows of `sobject` whose external id carries `tag`; -1 when the (fault-injected) query failed."""
    prefix = {"Account": "cus", "Stripe_Payment__c": "ch", "Stripe_Refund__c": "re"}[sobject]
    try:
        return len(client.query(f"SELECT Id FROM {sobject} WHERE {EXT[sobject]} LIKE '{prefix}_{tag}%'"))
    except CallError:
        return -1


def check_values(client: SalesforceClient, expected: dict[tuple[str, str], dict[str, Any]], tag: str) -> None:
    accounts = {r["Stripe_Customer_Id__c"]: r for r in client.query(
        f"SELECT Id, Name, Stripe_Customer_Id__c FROM Account WHERE Stripe_Customer_Id__c LIKE 'cus_{tag}%'")}
    payments = {r["Stripe_Charge_Id__c"]: r for r in client.query(
        "SELECT Id, Stripe_Charge_Id__c, Amount__c, Status__c, Fee__c, Account__c FROM Stripe_Payment__c "
        f"WHERE Stripe_Charge_Id__c LIKE 'ch_{tag}%'")}
    refunds = {r["Stripe_Refund_Id__c"]: r for r in client.query(
        f"SELECT Id, Stripe_Refund_Id__c, Status__c, Payment__c FROM Stripe_Refund__c WHERE Stripe_Refund_Id__c LIKE 're_{tag}%'")}
    for (sobject, ext), want in expected.items():
        if sobject == "Account":
            assert accounts[ext]["Name"] == want["Name"]
        elif sobject == "Stripe_Payment__c":
            got = payments[ext]
            assert got["Status__c"] == want["Status__c"], ext
            assert float(got["Amount__c"]) == float(want["Amount__c"]) and float(got["Fee__c"]) == 0.30
            assert got["Account__c"] == accounts[want["Account__r"]]["Id"]
        else:
            assert refunds[ext]["Payment__c"] == payments[want["Payment__r"]]["Id"]


def test_every_record_lands_exactly_once_under_faults(emulator: Any, sink_env: dict[str, str], produce: Any,
                                                      run_sink: Any) -> None:
    # lock errors hit child inserts too, half of them wrapped in CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY (issue 14.5)
    emulator.faults(error_503_rate=0.2, lock_rate=0.2, lock_wrap_rate=0.5, session_ttl_s=2)
    msgs, expected = workload(150, "f")
    produce(msgs[: len(msgs) // 2])
    running = run_sink(sink_bulk_threshold=120, sink_bulk_backlog=0, sink_bulk_first_poll_s=0.1)
    client = client_for(sink_env)
    # the daily limit runs out mid-stream, then comes back
    emulator.faults(daily_limit=emulator.stats()["api_used"] + 15)
    produce(msgs[len(msgs) // 2:])
    assert wait_for(lambda: running.sink._budget_paused, 30), "sink never paused for the budget"
    emulator.reset_limits()
    emulator.faults(daily_limit=1_000_000)
    assert wait_for(lambda: count(client, "Stripe_Refund__c", "f") == 150
                    and count(client, "Stripe_Payment__c", "f") == 150, 90)
    assert wait_for(lambda: count(client, "Account", "f") == 150, 10)  # a count may meet an injected 503: ask again
    # a session older than its TTL must be renewed, not fail the batch
    logins, opened = running.sink.client.logins, time.monotonic()
    wait_for(lambda: time.monotonic() - opened > 2.5, 5)  # the session TTL is a matter of time
    more, more_expected = workload(10, "g")
    produce(more)
    assert wait_for(lambda: count(client, "Stripe_Refund__c", "g") == 10, 60)
    assert running.sink.client.logins > logins
    emulator.faults(error_503_rate=0, lock_rate=0)
    check_values(client, expected, "f")
    check_values(client, more_expected, "g")
    assert emulator.stats()["calls"]["bulk"] > 0 and emulator.stats()["calls"]["composite"] > 0
    running.close()
    assert running.sink.tracker.to_commit() == {}


def test_poison_records_are_dead_lettered_with_origin(emulator: Any, sink_env: dict[str, str], produce: Any,
                                                      run_sink: Any, read_dead_letters: Any) -> None:
    msgs, expected = workload(20, "p")
    poison = [
        upsert("Stripe_Payment__c", "ch_ptoolong", {"Card_Last4__c": "123456789"}, event_id="evt_long"),
        upsert("Stripe_Payment__c", "ch_ppick", {"Status__c": "Exploded"}, event_id="evt_pick"),
    ]
    produce(msgs[:40] + poison + [(b"Stripe_Payment__c:ch_junk", b"\x00garbage")] + msgs[40:])
    running = run_sink()
    client = client_for(sink_env)
    dead = read_dead_letters(3, 60)
    by_code = {d["error_code"]: d for d in dead}
    assert set(by_code) == {"STRING_TOO_LONG", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "BAD_MAGIC"}, by_code
    assert by_code["STRING_TOO_LONG"]["event_id"] == "evt_long"
    assert by_code["STRING_TOO_LONG"]["topic"].endswith("salesforce.upserts")
    assert by_code["STRING_TOO_LONG"]["offset"] >= 0 and by_code["BAD_MAGIC"]["error_kind"] == "decode"
    assert wait_for(lambda: count(client, "Stripe_Refund__c", "p") == 20, 60)
    check_values(client, expected, "p")
    errors = client.query("SELECT Sync_Error_Key__c, Error_Code__c FROM Stripe_Sync_Error__c")
    assert {e["Error_Code__c"] for e in errors} >= {"STRING_TOO_LONG", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"}
    assert count(client, "Stripe_Payment__c", "p") == 20
    running.close()


def test_missing_parent_gets_a_stub_and_the_child_lands(emulator: Any, sink_env: dict[str, str], produce: Any,
                                                        run_sink: Any) -> None:
    produce([upsert("Stripe_Payment__c", "ch_orphan1", {"Status__c": "Pending"},
                    [parent("Account__r", "Account", "cus_never1")])])
    running = run_sink(sink_parent_wait_attempts=2, sink_parent_wait_s=0.5)
    client = client_for(sink_env)
    assert wait_for(lambda: count(client, "Stripe_Payment__c", "orphan") == 1, 30)
    (acct,) = client.query("SELECT Id, Name FROM Account WHERE Stripe_Customer_Id__c = 'cus_never1'")
    assert acct["Name"] == "cus_never1"
    running.close()


def test_sigkill_mid_batch_then_restart_loses_and_duplicates_nothing(emulator: Any, sink_env: dict[str, str],
                                                                    produce: Any) -> None:
    # A daily budget of three calls (writes) stops the sink part-way, deterministically:
    # it is killed holding batches it polled but could not write, with nothing of them committed.
    emulator.faults(daily_limit=3)
    msgs, expected = workload(300, "k")
    produce(msgs)
    env = {**os.environ, **sink_env, "PAYSYNC_SINK_BULK_THRESHOLD": "100000", "PAYSYNC_SINK_COLLECTION_SIZE": "50",
           "PAYSYNC_SINK_SESSION_TIMEOUT_MS": "6000"}
    cmd = [sys.executable, "-m", "ops.cli", "sink"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def held() -> bool:  # the budget is spent and the sink has since probed it again: it is paused
            stats = emulator.stats()
            return stats["api_used"] >= 3 and stats["calls"]["rest"] >= 1 and stats["calls"].get("limits", 0) == 0

        assert wait_for(held, 60), emulator.stats()
        writes = sum(emulator.stats()["calls"][k] for k in ("composite", "collections", "rest"))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        emulator.faults(daily_limit=100_000)
        emulator.reset_limits()
        client = client_for(sink_env)
        landed = {sobject: count(client, sobject, "k") for sobject in EXT}
        assert writes >= 1 and 0 < sum(landed.values()) < 900, (writes, landed)
        assert landed["Stripe_Refund__c"] < 300
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(lambda: count(client, "Stripe_Refund__c", "k") == 300, 90)
        for sobject in EXT:
            assert count(client, sobject, "k") == 300, sobject
        check_values(client, expected, "k")
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
