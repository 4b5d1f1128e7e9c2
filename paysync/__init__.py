"""paysync's shared package: what producers, streams and sinks all need.

It imports none of them (an import-linter contract checks this). Contents:
settings (configuration read once), topics (declared once), codec (Avro wire formats),
money (exact minor-unit conversions), net (free_port), logs (JSON logs
that never carry secrets), outcomes (retry / dead-letter / skip vocabulary), deadletter.
"""

__version__ = "0.1.0"
