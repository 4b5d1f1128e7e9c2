"""Are the permission sets assigned to the integration user?

First asked directly: `SELECT PermissionSet.Name FROM PermissionSetAssignment WHERE AssigneeId = '<user>'`. The
Object Reference ("PermissionSetAssignment") says "only users who have one of these permissions can access this
object: View Setup and Configuration, Assign Permission Sets, Manage User", and the package grants none of them,
so for the integration user the answer is usually a refusal. Then the doctor reads the permission sets' effect
instead: every object and field access a set grants must show in the describe results ("Understanding Describe
Information Permissions": fields the user cannot access are not returned). None of them in effect → not assigned.
"""

from __future__ import annotations

from typing import Any, Protocol

from emulators.salesforce_emulator.access import Grant

from ops.doctor.report import Check, fail, ok, warn
from ops.doctor.sf_expected import Expectation

SYSTEM = "salesforce"
ASSIGN_FIX = ("sf org assign permset --name {name} --target-org <alias> --on-behalf-of <integration user name> "
              "(salesforce/README.md step 4)")


class Org(Protocol):
    settings: Any

    @property
    def user_id(self) -> str: ...

    def get(self, path: str, params: dict[str, str] | None = None) -> tuple[int, Any]: ...


def _assigned_names(org: Org) -> set[str] | None:
    """The names of the permission sets assigned to the user, None when the user may not read assignments."""
    if not org.user_id:
        return None
    soql = f"SELECT PermissionSet.Name FROM PermissionSetAssignment WHERE AssigneeId = '{org.user_id}'"
    status, body = org.get(f"/services/data/v{org.settings.salesforce_api_version}/query", {"q": soql})
    if status != 200 or not isinstance(body, dict):
        return None
    return {str((r.get("PermissionSet") or {}).get("Name")) for r in body.get("records") or []}


def _unmet_grants(grant: Grant, described: dict[str, dict[str, Any]]) -> tuple[int, list[str]]:
    """(grants checked, those not in effect) over the objects the doctor described."""
    checked, unmet = 0, []
    for sobject, (create, edit, read) in grant.objects.items():
        body = described.get(sobject)
        if body is None:
            continue
        checked += 1
        if (create and not body.get("createable")) or (edit and not body.get("updateable")):
            unmet.append(f"{'create/' if create else ''}edit {sobject}")
    for key, (edit, read) in grant.fields.items():
        sobject, _, name = key.partition(".")
        body = described.get(sobject)
        if body is None:
            continue
        checked += 1
        got = next((f for f in body.get("fields", []) if f.get("name") == name), None)
        if (read and got is None) or (edit and got is not None and not got.get("updateable")):
            unmet.append(f"{'edit' if edit else 'read'} {key}")
    return checked, unmet


def permission_checks(org: Org, expected: Expectation, described: dict[str, dict[str, Any]]) -> list[Check]:
    """One check per permission set this deployment needs."""
    assigned = _assigned_names(org)
    checks: list[Check] = []
    for name, grant in expected.permission_sets.items():
        label = f"permission set {name}"
        if assigned is not None:
            checks.append(ok(SYSTEM, label, "assigned") if name in assigned else
                          fail(SYSTEM, label, "not assigned to the integration user", ASSIGN_FIX.format(name=name)))
            continue
        checked, unmet = _unmet_grants(grant, described)
        how = "(read from describe: the user may not query PermissionSetAssignment)"
        if checked and len(unmet) == checked:
            checks.append(fail(SYSTEM, label, f"not in effect: none of its {checked} grants show {how}",
                               ASSIGN_FIX.format(name=name)))
        elif unmet:
            checks.append(warn(SYSTEM, label, f"{len(unmet)} of {checked} grants not in effect ({', '.join(unmet[:4])}"
                               f"{' …' if len(unmet) > 4 else ''}) {how}", "see the object checks above; redeploy "
                               "the package, then " + ASSIGN_FIX.format(name=name)))
        else:
            checks.append(ok(SYSTEM, label, f"in effect, all {checked} grants {how}"))
    missing = [n for n in ("Paysync_Integration",) if n not in expected.permission_sets]
    checks += [fail(SYSTEM, f"permission set {n}", "not in the package folder", "restore salesforce/ from the repository")
               for n in missing]
    return checks
