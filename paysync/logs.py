"""Structured JSON logs, one object per line, that never carry secrets or card data.

`setup_logging()` once in an entry point; then `log.info("msg", extra={"event_id": …, "topic": …})`.
Values are scrubbed: Stripe secret keys, webhook secrets, bearer tokens and anything that looks
like a card number (13–19 digits passing Luhn) are replaced before a line is written.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

from paysync.pan import redact_card_numbers

_SECRET_PATTERNS = (
    re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{8,}"),
    re.compile(r"\bwhsec_[A-Za-z0-9+/=]{8,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/!=-]{8,}"),
    re.compile(r"(?i)(\"?(?:password|client_secret|access_token|security_token|api_key)\"?\s*[:=]\s*\"?)[^\s\",&]+"),
)
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def scrub(text: str) -> str:
    """`text` with secrets and card-number-like digit runs replaced by `[REDACTED]`; decimal numbers are kept."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[REDACTED]", text)
    return redact_card_numbers(text, decimals_are_numbers=True)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: ts, level, logger, msg, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return scrub(json.dumps(out, default=str, ensure_ascii=False))


def setup_logging(level: str = "INFO", stream: Any = None) -> None:
    """Route every logger to one JSON-lines handler on stderr (or `stream`)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka", "urllib3", "faust", "mode", "uvicorn.access", "stripe", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
