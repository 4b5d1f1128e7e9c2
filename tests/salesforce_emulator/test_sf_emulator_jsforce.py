"""A second, independent client: jsforce 3 (npm) logs in over SOAP and runs a Bulk 2.0 upsert.

The test set-up installs jsforce into `<state dir>/node` (npm) once; the test is skipped only if npm is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from emulators.salesforce_emulator import EmulatorHandle
from paysync.paths import state_dir

SCRIPT = Path(__file__).with_name("jsforce_bulk2.js")


@pytest.fixture(scope="module")
def jsforce_dir() -> Path:
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("npm/node not installed: cannot install jsforce for the second-client test")
    folder = state_dir() / "node"
    if not (folder / "node_modules" / "jsforce" / "package.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(folder), "jsforce@3"],
                       check=True, capture_output=True, timeout=300)
    return folder


def _run(jsforce_dir: Path, handle: EmulatorHandle, csv_path: Path) -> dict[str, object]:
    c = handle.credentials
    env = {**os.environ, "NODE_PATH": str(jsforce_dir / "node_modules"),
           "NODE_EXTRA_CA_CERTS": str(handle.ca_cert_path)}
    env.pop("HTTPS_PROXY", None)
    env.pop("https_proxy", None)
    proc = subprocess.run(
        ["node", str(SCRIPT), handle.base_url, c["username"], c["password"] + c["security_token"], str(csv_path),
         "Stripe_Refund__c", "Stripe_Refund_Id__c"],
        capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_jsforce_bulk2_upsert_twice_same_count(jsforce_dir: Path, emulator: EmulatorHandle, tmp_path: Path) -> None:
    lines = ["Stripe_Refund_Id__c,Amount__c,Currency__c,Status__c,Created_At__c"]
    lines += [f"re_js_{i},{i}.5,USD,Succeeded,2026-01-02T03:04:05.000Z" for i in range(1000)]
    lines += ["re_js_bad,1,USD,NotAStatus,", "re_js_long,1,USDX,Pending,"]
    csv_path = tmp_path / "refunds.csv"
    csv_path.write_text("\n".join(lines) + "\n")
    first = _run(jsforce_dir, emulator, csv_path)
    assert first["instanceUrl"] == emulator.base_url
    assert first["successful"] == 1000 and first["unprocessed"] == 0
    failed = sorted(first["failed"])  # type: ignore[arg-type]
    assert failed[0].startswith("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:")
    assert failed[1].startswith("STRING_TOO_LONG:Currency: data value too large: USDX (max length=3):Currency__c")
    second = _run(jsforce_dir, emulator, csv_path)
    assert first["total"] == second["total"] == 1000
