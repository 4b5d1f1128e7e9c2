"""Avro (de)serialization of paysync's records, with fastavro.

Two wire formats:
- Avro single-object encoding (default): `C3 01`, the writer schema's 8-byte little-endian
  CRC-64-AVRO fingerprint, then the Avro binary body. Writer schemas are resolved against
  `schemas/*.avsc` and `schemas/history/*.avsc`, so records written by an older schema stay readable.
- Confluent wire format (`0x00`, 4-byte schema id, body) through a Schema Registry, when a registry
  URL is configured (`SCHEMA_REGISTRY_URL`; `mock://…` gives an in-process registry for tests).

Every decoding problem raises `CodecError` with a `code` naming it: TRUNCATED, BAD_MAGIC,
UNKNOWN_FINGERPRINT, UNKNOWN_SCHEMA, INVALID_RECORD, INCOMPATIBLE.

`encode_record` / `decode_record` take an `AvroRecord` (`paysync.records`) and are typed by it.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Mapping
from typing import Any, TypeVar, cast

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from paysync.records import AvroRecord
from schemas import SCHEMAS_DIR

R = TypeVar("R")

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"

class CodecError(ValueError):
    """A record could not be encoded or decoded; `code` says why in one word."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Schema:
    """A parsed schema with its full name, canonical form and fingerprint."""

    name: str
    parsed: Any
    canonical: str
    fingerprint: bytes  # 8 bytes, little-endian

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "Schema":
        # Logical types are documentation here: timestamps stay epoch-millisecond ints in Python.
        # The parsing canonical form drops logicalType, so the fingerprint is unaffected.
        plain = _strip_logical_types(raw)
        canonical = to_parsing_canonical_form(parse_schema(plain, _write_hint=False))
        name = f"{raw.get('namespace')}.{raw['name']}" if raw.get("namespace") else raw["name"]
        fp = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))  # fastavro gives it little-endian
        return cls(name=name, parsed=parse_schema(plain), canonical=canonical, fingerprint=fp)


def _strip_logical_types(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_logical_types(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_strip_logical_types(v) for v in node]
    return node


def load_schemas(directory: Path = SCHEMAS_DIR) -> tuple[dict[str, Schema], dict[bytes, Schema]]:
    """Current schemas by full name, and every known writer schema (history too) by fingerprint."""
    current: dict[str, Schema] = {}
    by_fp: dict[bytes, Schema] = {}
    for path in sorted(directory.glob("*.avsc")):
        schema = Schema.from_json(json.loads(path.read_text(encoding="utf-8")))
        current[schema.name] = schema
        by_fp[schema.fingerprint] = schema
    for path in sorted((directory / "history").glob("*.avsc")):
        schema = Schema.from_json(json.loads(path.read_text(encoding="utf-8")))
        by_fp.setdefault(schema.fingerprint, schema)
    return current, by_fp


class AvroCodec:
    """Encodes and decodes paysync records; one instance per process is enough (thread-safe reads)."""

    def __init__(self, registry_url: str | None = None, directory: Path = SCHEMAS_DIR) -> None:
        self.schemas, self._by_fingerprint = load_schemas(directory)
        self._registry_url = registry_url
        self._serializers: dict[tuple[str, str], Any] = {}
        self._deserializers: dict[str, Any] = {}
        self._registry: Any = None
        if registry_url:
            from confluent_kafka.schema_registry import SchemaRegistryClient

            self._registry = SchemaRegistryClient.new_client({"url": registry_url})

    def schema(self, name: str) -> Schema:
        """The current schema of that full name (e.g. `paysync.DeadLetter`)."""
        try:
            return self.schemas[name]
        except KeyError:
            raise CodecError("UNKNOWN_SCHEMA", f"no schema named {name!r} in schemas/") from None

    def encode_record(self, kind: AvroRecord[R], record: R, topic: str | None = None) -> bytes:
        """`encode` of a typed record (`paysync.records`): the schema comes with the type."""
        return self.encode(kind.schema, cast(Mapping[str, Any], record), topic)

    def decode_record(self, kind: AvroRecord[R], data: bytes | None, topic: str | None = None) -> R:
        """`decode` read as `kind`'s schema, typed as its record (CodecError as `decode`)."""
        return cast(R, self.decode(data, kind.schema, topic))

    def encode(self, schema_name: str, record: Mapping[str, Any], topic: str | None = None) -> bytes:
        """Serialize `record` with the current schema `schema_name`; raises CodecError(INVALID_RECORD)."""
        schema = self.schema(schema_name)
        if self._registry is not None:
            return self._encode_confluent(schema, record, topic or schema.name)
        buf = io.BytesIO()
        buf.write(SINGLE_OBJECT_MAGIC)
        buf.write(schema.fingerprint)
        try:
            fastavro.schemaless_writer(buf, schema.parsed, record, strict_allow_default=True)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise CodecError("INVALID_RECORD", f"record does not fit {schema.name}: {exc}") from None
        return buf.getvalue()

    def decode(self, data: bytes | None, schema_name: str | None = None, topic: str | None = None) -> dict[str, Any]:
        """Deserialize `data`, resolving the writer schema from the bytes; read as `schema_name` if given."""
        if data is None or len(data) == 0:
            raise CodecError("TRUNCATED", "empty value: no Avro record")
        if data[:1] == CONFLUENT_MAGIC and self._registry is not None:
            return self._decode_confluent(data, schema_name, topic)
        if len(data) < 2 or data[:2] != SINGLE_OBJECT_MAGIC:
            raise CodecError("BAD_MAGIC", f"expected Avro single-object marker C3 01, got {data[:2].hex() or 'nothing'}")
        if len(data) < 10:
            raise CodecError("TRUNCATED", f"{len(data)} bytes: too short for a fingerprint")
        writer = self._by_fingerprint.get(bytes(data[2:10]))
        if writer is None:
            raise CodecError("UNKNOWN_FINGERPRINT", f"no known schema has fingerprint {bytes(data[2:10]).hex()}")
        reader = self.schema(schema_name) if schema_name else writer
        if reader.name != writer.name:
            raise CodecError("INCOMPATIBLE", f"record written as {writer.name}, asked to read as {reader.name}")
        stream = io.BytesIO(data[10:])
        try:
            record = fastavro.schemaless_reader(stream, writer.parsed, reader.parsed)
        except EOFError:
            raise CodecError("TRUNCATED", f"body ends early for {writer.name}") from None
        except (ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError, OverflowError,
                fastavro.read.SchemaResolutionError) as exc:
            raise CodecError("INVALID_RECORD", f"cannot read body as {writer.name}: {exc}") from None
        if stream.tell() != len(data) - 10:
            raise CodecError("INVALID_RECORD", f"{len(data) - 10 - stream.tell()} trailing bytes after {writer.name}")
        if not isinstance(record, dict):
            raise CodecError("INVALID_RECORD", f"{writer.name} is not a record schema")
        return record

    # Confluent wire format ---------------------------------------------------------------------

    def _encode_confluent(self, schema: Schema, record: Mapping[str, Any], topic: str) -> bytes:
        from confluent_kafka.schema_registry.avro import AvroSerializer
        from confluent_kafka.serialization import MessageField, SerializationContext

        key = (schema.name, topic)
        if key not in self._serializers:
            self._serializers[key] = AvroSerializer(
                self._registry, schema.canonical, conf={"auto.register.schemas": True}
            )
        try:
            out = self._serializers[key](record, SerializationContext(topic, MessageField.VALUE))
        except Exception as exc:  # the serializer wraps fastavro's errors in its own types
            raise CodecError("INVALID_RECORD", f"record does not fit {schema.name}: {exc}") from None
        return bytes(out)

    def _decode_confluent(self, data: bytes, schema_name: str | None, topic: str | None) -> dict[str, Any]:
        from confluent_kafka.schema_registry.avro import AvroDeserializer
        from confluent_kafka.serialization import MessageField, SerializationContext

        if len(data) < 5:
            raise CodecError("TRUNCATED", f"{len(data)} bytes: too short for a Confluent schema id")
        cache_key = schema_name or ""
        if cache_key not in self._deserializers:
            reader = self.schema(schema_name).canonical if schema_name else None
            self._deserializers[cache_key] = AvroDeserializer(self._registry, reader)
        try:
            context = SerializationContext(topic or "", MessageField.VALUE)
            record: dict[str, Any] = self._deserializers[cache_key](data, context)
        except Exception as exc:
            text = str(exc)
            code = "UNKNOWN_FINGERPRINT" if "not found" in text.lower() else "INVALID_RECORD"
            raise CodecError(code, f"cannot read Confluent-framed record: {text}") from None
        return record
