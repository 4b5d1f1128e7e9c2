"""The Avro contracts between paysync's stages (`*.avsc`), shipped as package data.

`history/` keeps every superseded version (`<Name>.v<N>.avsc`) so that old records stay readable.
"""

from pathlib import Path

SCHEMAS_DIR: Path = Path(__file__).resolve().parent
