"""Salesforce's own tooling reads the package: `@salesforce/source-deploy-retrieve` (SDR, the library behind
`sf project deploy start`) converts `salesforce/` to Metadata API format with no error and no file it cannot
resolve, and its package.xml lists exactly the objects, fields, value sets and permission sets of the source.

SDR is installed once (`npm ci`) into `<cache dir>/npm-sdr/<hash of package.json + lock>`, outside the repo;
the test skips only when node/npm are absent. Version 12 needs undici held at 6.x on Node 20 (`overrides` in
package.json).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from paysync.paths import SALESFORCE_PROJECT_DIR, cache_dir

HERE = Path(__file__).resolve().parent
PACKAGE_JSON = HERE / "package.json"
PACKAGE_LOCK = HERE / "package-lock.json"  # npm ci: the exact tree, undici held at 6.x
SCRIPT = HERE / "sdr_convert.js"
NS = {"m": "http://soap.sforce.com/2006/04/metadata"}


@pytest.fixture(scope="module")
def sdr_modules() -> Path:
    """node_modules holding SDR, installed once per package.json + lock content."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("node/npm not installed: cannot run Salesforce's source-deploy-retrieve on the package")
    key = hashlib.sha256(PACKAGE_JSON.read_bytes() + PACKAGE_LOCK.read_bytes()).hexdigest()[:16]
    folder = cache_dir() / "npm-sdr" / key
    done = folder / ".installed"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(PACKAGE_JSON, folder / "package.json")
        shutil.copy(PACKAGE_LOCK, folder / "package-lock.json")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(folder)],
                       check=True, capture_output=True, timeout=600)
        done.write_text("ok\n")
    modules = folder / "node_modules"
    undici = json.loads((modules / "undici" / "package.json").read_text())["version"]
    assert undici.startswith("6."), f"undici {undici}: the npm override did not hold"
    return modules


def _convert(modules: Path, project: Path, out: Path, *dirs: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NODE_PATH": str(modules), "SF_DISABLE_TELEMETRY": "true"}
    return subprocess.run(["node", str(SCRIPT), str(project), str(out), *dirs], capture_output=True, text=True,
                          env=env, timeout=180, check=False)


def _converted(modules: Path, project: Path, out: Path, *dirs: str) -> dict[str, Any]:
    proc = _convert(modules, project, out, *dirs)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _members(package_xml: str) -> dict[str, set[str]]:
    root = ET.fromstring(package_xml)
    return {t.findtext("m:name", namespaces=NS) or "": {m.text or "" for m in t.findall("m:members", NS)}
            for t in root.findall("m:types", NS)}


def _expected(package_dirs: list[Path]) -> dict[str, set[str]]:
    """What package.xml must list, read from the source folders themselves."""
    out: dict[str, set[str]] = {"CustomObject": set(), "CustomField": set(), "GlobalValueSet": set(),
                                "PermissionSet": set()}
    for root in package_dirs:
        out["CustomObject"] |= {p.parent.name for p in root.glob("objects/*/*.object-meta.xml")}
        out["CustomField"] |= {f"{p.parent.parent.name}.{p.name.split('.')[0]}"
                               for p in root.glob("objects/*/fields/*.field-meta.xml")}
        out["GlobalValueSet"] |= {p.name.split(".")[0] for p in root.glob("globalValueSets/*.globalValueSet-meta.xml")}
        out["PermissionSet"] |= {p.name.split(".")[0] for p in root.glob("permissionsets/*.permissionset-meta.xml")}
        out.setdefault("ReportType", set()).update(p.name.split(".")[0] for p in root.glob("reportTypes/*.reportType-meta.xml"))
        out.setdefault("Flow", set()).update(p.name.split(".")[0] for p in root.glob("flows/*.flow-meta.xml"))
        for kind, folder in (("Report", "reports"), ("Dashboard", "dashboards")):
            # a folder is listed as `Folder/` (SDR 12), its items as `Folder/Name`
            out.setdefault(kind, set()).update(f"{p.name.split('.')[0]}/" for p in root.glob(f"{folder}/*Folder-meta.xml"))
            out[kind].update(f"{p.parent.name}/{p.name.split('.')[0]}" for p in root.glob(f"{folder}/*/*-meta.xml"))
    return {k: v for k, v in out.items() if v}


def _package_dirs(project: Path) -> list[Path]:
    entries = json.loads((project / "sfdx-project.json").read_text())["packageDirectories"]
    return [project / e["path"] / "main" / "default" for e in entries]


def test_sdr_converts_every_package_directory(sdr_modules: Path, tmp_path: Path) -> None:
    result = _converted(sdr_modules, SALESFORCE_PROJECT_DIR, tmp_path / "mdapi")
    listed = _members(result["packageXml"])
    assert listed == _expected(_package_dirs(SALESFORCE_PROJECT_DIR))
    assert ET.fromstring(result["packageXml"]).findtext("m:version", namespaces=NS) == json.loads(
        (SALESFORCE_PROJECT_DIR / "sfdx-project.json").read_text())["sourceApiVersion"]
    # A field of the Orders package on a main-package object is merged into that object's one .object file.
    payment = ET.parse(Path(result["outputDir"]) / "objects" / "Stripe_Payment__c.object").getroot()
    names = {f.findtext("m:fullName", namespaces=NS) for f in payment.findall("m:fields", NS)}
    assert {"Order__c", "Opportunity__c", "Stripe_Charge_Id__c"} <= names
    assert {"Paysync_Integration", "Paysync_Integration_Orders"} <= listed["PermissionSet"]
    # issue 17: the platform event, the report types, reports, dashboard and the example Flows convert too
    assert "Stripe_Payment_Event__e" in listed["CustomObject"]
    assert {"Stripe_Payouts_With_Balance_Transactions", "Stripe_Payments", "Stripe_Disputes",
            "Stripe_Sync_Errors"} <= listed["ReportType"]
    assert "Paysync_Dashboards/Paysync_Finance" in listed["Dashboard"]
    assert {"Paysync_Payment_Succeeded", "Paysync_Dispute_Opened"} <= listed["Flow"]


def test_the_main_package_converts_alone_without_any_order_component(sdr_modules: Path, tmp_path: Path) -> None:
    result = _converted(sdr_modules, SALESFORCE_PROJECT_DIR, tmp_path / "mdapi", "force-app")
    listed = _members(result["packageXml"])
    assert listed == _expected(_package_dirs(SALESFORCE_PROJECT_DIR)[:1])
    every = {m for members in listed.values() for m in members}
    assert not {m for m in every if m == "Order" or m.startswith("Order.") or m.endswith(".Order__c")}
    converted = (Path(result["outputDir"]) / "permissionsets" / "Paysync_Integration.permissionset").read_text()
    assert "Order" not in converted.replace("Order access is in Paysync_Integration_Orders", "")


def test_sdr_refuses_what_it_cannot_resolve(sdr_modules: Path, tmp_path: Path) -> None:
    project = tmp_path / "salesforce"
    shutil.copytree(SALESFORCE_PROJECT_DIR, project)
    fields = project / "force-app" / "main" / "default" / "objects" / "Stripe_Payout__c" / "fields"
    stray = fields / "Notes.txt"
    stray.write_text("not metadata\n")
    proc = _convert(sdr_modules, project, tmp_path / "out1")
    assert proc.returncode == 1 and "Notes.txt" in proc.stderr
    stray.unlink()
    (fields / "Broken__c.field-meta.xml").write_text('<CustomField xmlns="http://soap.sforce.com/2006/04/metadata">'
                                                     "<fullName>Broken__c</fullName\n")
    proc = _convert(sdr_modules, project, tmp_path / "out2")
    assert proc.returncode == 1 and "Broken__c" in proc.stderr
    (fields / "Broken__c.field-meta.xml").unlink()
    (project / "orders" / "main" / "default" / "widgets").mkdir()
    (project / "orders" / "main" / "default" / "widgets" / "A.widget-meta.xml").write_text("<Widget/>\n")
    proc = _convert(sdr_modules, project, tmp_path / "out3")
    assert proc.returncode == 1 and "Could not infer a metadata type" in proc.stderr
