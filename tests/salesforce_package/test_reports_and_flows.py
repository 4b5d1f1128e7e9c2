"""Issue 17: the package's report types, reports, dashboard and example Flows name only what exists — every
report's report type is in the package, every column, grouping, filter and time frame names an existing field that
its report type offers, every dashboard component an existing report, every Flow an existing object and fields,
and the Flows ship inactive (`<status>Draft</status>`: "Draft— Indicates a flow that is under construction and
isn't active yet", FlowRecordVersion, Object Reference). The same files pass Salesforce's own converter in
test_sdr_convert.py."""

from __future__ import annotations

import shutil
from pathlib import Path

from report_model import dashboard_problems, flow_problems, report_problems, report_type_problems
from emulators.salesforce_emulator.metadata import load_schema
from paysync.paths import SALESFORCE_METADATA_DIR, SALESFORCE_PROJECT_DIR

SOURCE = SALESFORCE_METADATA_DIR
SCHEMA = load_schema(SALESFORCE_PROJECT_DIR)


def test_the_package_ships_the_finance_reports_dashboard_and_flows() -> None:
    assert {p.name.split(".")[0] for p in SOURCE.glob("reports/*/*.report-meta.xml")} == {
        "Payout_Reconciliation_By_Month", "Payments_By_Status", "Open_Disputes_By_Evidence_Due_Date",
        "Sync_Errors_By_Code"}
    assert (SOURCE / "dashboards" / "Paysync_Dashboards" / "Paysync_Finance.dashboard-meta.xml").is_file()
    assert {p.name.split(".")[0] for p in SOURCE.glob("flows/*.flow-meta.xml")} == {
        "Paysync_Payment_Succeeded", "Paysync_Dispute_Opened"}


def test_report_types_name_existing_objects_relationships_and_fields() -> None:
    paths = sorted(SOURCE.glob("reportTypes/*.reportType-meta.xml"))
    assert len(paths) == 4
    assert [p for path in paths for p in report_type_problems(SCHEMA, path)] == []


def test_reports_use_package_report_types_and_existing_fields() -> None:
    paths = sorted(SOURCE.glob("reports/*/*.report-meta.xml"))
    assert [p for path in paths for p in report_problems(SCHEMA, SOURCE, path)] == []


def test_dashboard_components_name_package_reports() -> None:
    paths = sorted(SOURCE.glob("dashboards/*/*.dashboard-meta.xml"))
    assert paths and [p for path in paths for p in dashboard_problems(SOURCE, path)] == []


def test_flows_are_inactive_and_name_existing_fields() -> None:
    paths = sorted(SOURCE.glob("flows/*.flow-meta.xml"))
    assert [p for path in paths for p in flow_problems(SCHEMA, path)] == []


def test_a_misspelled_field_or_report_type_is_caught(tmp_path: Path) -> None:
    source = tmp_path / "default"
    shutil.copytree(SOURCE, source)
    report = source / "reports" / "Paysync_Reports" / "Payments_By_Status.report-meta.xml"
    report.write_text(report.read_text().replace("Stripe_Payment__c$Fee__c", "Stripe_Payment__c$Fees__c"))
    assert report_problems(SCHEMA, source, report) == [
        "Payments_By_Status.report-meta.xml: Stripe_Payment__c$Fees__c: Stripe_Payment__c has no field Fees__c"]
    report.write_text(report.read_text().replace("Stripe_Payments__c", "Stripe_Paymentz__c"))
    assert report_problems(SCHEMA, source, report) == [
        "Payments_By_Status.report-meta.xml: report type Stripe_Paymentz is not in the package"]
    rtype = source / "reportTypes" / "Stripe_Payouts_With_Balance_Transactions.reportType-meta.xml"
    rtype.write_text(rtype.read_text().replace("<field>Gross__c</field>", "<field>Grosss__c</field>"))
    assert report_type_problems(SCHEMA, rtype) == [
        f"{rtype.name}: Stripe_Payout__c$Grosss__c: Stripe_Payout__c has no field Grosss__c"]
    flow = source / "flows" / "Paysync_Dispute_Opened.flow-meta.xml"
    flow.write_text(flow.read_text().replace("<status>Draft</status>", "<status>Active</status>"))
    assert flow_problems(SCHEMA, flow) == [f"{flow.name}: status Active (must ship inactive: Draft)"]
