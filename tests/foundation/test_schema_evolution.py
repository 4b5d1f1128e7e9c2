"""Every schema reads data written by each of its committed versions (backward compatibility)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.schema import parse_schema

from paysync.codec import AvroCodec, Schema
from paysync.paths import REPO_ROOT

SCHEMA_FILES = sorted((REPO_ROOT / "schemas").glob("*.avsc"))


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, check=True).stdout


def committed_versions(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(commit, schema) for every commit that changed `path`."""
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    rel = path.relative_to(REPO_ROOT).as_posix()
    commits = _git("log", "--format=%H", "--", rel).split()
    return [(c, json.loads(_git("show", f"{c}:{rel}"))) for c in commits]


def sample(schema: Any) -> Any:
    """A deterministic, fully populated datum for a parsed schema."""
    if isinstance(schema, list):
        non_null = [s for s in schema if s != "null"]
        return sample(non_null[0]) if non_null else None
    if isinstance(schema, str):
        return {"string": "x", "long": 7, "int": 3, "boolean": True, "bytes": b"\x01", "double": 1.5,
                "float": 1.5, "null": None}[schema]
    kind = schema["type"]
    if kind == "record":
        return {f["name"]: sample(f["type"]) for f in schema["fields"]}
    if kind == "enum":
        return schema["symbols"][0]
    if kind == "array":
        return [sample(schema["items"])]
    if kind == "map":
        return {"k": sample(schema["values"])}
    return sample(kind)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_current_schema_reads_every_committed_version(path: Path) -> None:
    current = Schema.from_json(json.loads(path.read_text()))
    for commit, old_raw in committed_versions(path):
        old = Schema.from_json(old_raw)
        datum = sample(parse_schema(old_raw, _write_hint=False, _force=True))
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, old.parsed, datum)
        buf.seek(0)
        try:
            fastavro.schemaless_reader(buf, old.parsed, current.parsed)
        except Exception as exc:  # noqa: BLE001 - any resolution failure is the finding
            pytest.fail(f"{path.name} cannot read data written by commit {commit[:8]}: {exc}")


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_codec_can_resolve_every_committed_writer(path: Path) -> None:
    """Old records on the topics stay decodable: every committed version is current or kept in schemas/history/."""
    codec = AvroCodec()
    known = set(codec._by_fingerprint)  # noqa: SLF001 - the codec's writer registry is what is checked
    for commit, old_raw in committed_versions(path):
        fp = Schema.from_json(old_raw).fingerprint
        assert fp in known, f"{path.name} at {commit[:8]} is not in schemas/history/: old records would not decode"


def test_incompatible_change_is_caught() -> None:
    """The check above can fail: a new required field without default cannot read old data."""
    old_raw = json.loads((REPO_ROOT / "schemas" / "poller_cursor.avsc").read_text())
    new_raw = json.loads(json.dumps(old_raw))
    new_raw["fields"].append({"name": "required_new", "type": "string"})
    old, new = Schema.from_json(old_raw), Schema.from_json(new_raw)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, old.parsed, sample(old.parsed))
    buf.seek(0)
    with pytest.raises(Exception):
        fastavro.schemaless_reader(buf, old.parsed, new.parsed)
