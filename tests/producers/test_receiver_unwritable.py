"""A signed body whose redacted copy orjson cannot write (nested deeper than orjson's 254 levels, or a string with a
lone surrogate, which JSON's `\\ud800` escape allows) is refused as not an event (400), not a crash of the handler.
Fails on the old code (70b1e54, a7d5d3c): `paysync.redact._dumps` let orjson's TypeError out of `envelope`."""

from __future__ import annotations

import asyncio

import pytest
from producer_helpers import SECRET, AckingPublisher, asgi_request, signed_headers

from paysync.deadletter import redacted_value
from paysync.redact import RedactionError, redact_json_text
from producers.webhook.app import WebhookApp

NOW = 1_800_000_000
HEAD = ('{"id":"evt_1","object":"event","type":"charge.succeeded","livemode":false,"created":1800000000,'
        '"data":{"object":{"id":"ch_1","object":"charge","source":{"object":"card","last4":"4242","exp_month":1},')
DEEP = HEAD + '"metadata_list":' + "[" * 300 + "]" * 300 + "}}}"
SURROGATE = HEAD + '"description":"\\ud800"}}}'


@pytest.mark.parametrize("text", [DEEP, SURROGATE], ids=["deep", "lone-surrogate"])
def test_an_unwritable_redaction_is_refused_not_crashed(text: str) -> None:
    with pytest.raises(RedactionError):
        redact_json_text(text)
    assert redacted_value(text.encode()) is not None  # a dead letter of it falls back to redacting the text
    publisher = AckingPublisher()
    app = WebhookApp(publisher=publisher, secrets=[SECRET.encode()], clock=lambda: NOW)
    status, body = asyncio.run(asgi_request(app, "POST", "/webhooks/stripe", text.encode(),
                                            signed_headers(text, timestamp=NOW)))
    assert (status, body["error"]) == (400, "not_an_event") and publisher.records == []
