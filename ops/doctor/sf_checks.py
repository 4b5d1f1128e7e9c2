"""Salesforce: the settings, the login (the sink's own `Authenticator`), the API version, every object and field
the sink writes (describe: exists, type, external id, createable/updateable for the integration user), and the
permission sets in effect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from core.config import MappingConfig
from sinks.auth import AuthError, Authenticator, Token
from sinks.settings import SalesforceSettings

from ops.doctor.report import Check, fail, ok, skip
from ops.doctor.sf_expected import ExpectedObject, expectation
from ops.doctor.sf_permissions import permission_checks

SYSTEM = "salesforce"
DEPLOY_FIX = "deploy the package: salesforce/README.md step 1 (sf project deploy start --source-dir force-app …)"


class OrgSession:
    """Calls to the org as the integration user, after a login through the sink's `Authenticator`."""

    def __init__(self, settings: SalesforceSettings) -> None:
        self.settings = settings
        self.http = requests.Session()
        if settings.salesforce_ca_bundle:
            self.http.verify = settings.salesforce_ca_bundle
        self.identity = ""
        self.token: Token | None = None
        self.http.hooks["response"].append(self._remember_identity)

    def _remember_identity(self, resp: requests.Response, *args: Any, **kwargs: Any) -> None:
        """The token answer's `id` (identity URL: …/id/<org id>/<user id>); the token itself stays in `Token`."""
        if resp.request.url and resp.request.url.endswith("/services/oauth2/token") and resp.status_code == 200:
            try:
                self.identity = str(resp.json().get("id") or "")
            except ValueError:
                self.identity = ""

    @property
    def user_id(self) -> str:
        return self.identity.rstrip("/").rsplit("/", 1)[-1] if self.identity else ""

    def login(self) -> Token:
        self.token = Authenticator(self.settings, self.http).login()
        return self.token

    def get(self, path: str, params: dict[str, str] | None = None) -> tuple[int, Any]:
        assert self.token is not None, "login first"
        try:
            # verify passed explicitly, as the sink's Authenticator does: REQUESTS_CA_BUNDLE would override the session's
            resp = self.http.get(self.token.instance_url.rstrip("/") + path, params=params, timeout=30,
                                 verify=self.http.verify, headers={"Authorization": f"Bearer {self.token.access_token}"})
        except requests.RequestException as exc:
            return 0, {"error": type(exc).__name__}
        try:
            return resp.status_code, resp.json()
        except ValueError:
            return resp.status_code, None


def _login_fix(settings: SalesforceSettings, message: str) -> str:
    if "not supported on this domain" in message or "unsupported_grant_type" in message:
        return ("set PAYSYNC_SALESFORCE_LOGIN_URL to the org's My Domain URL (https://<domain>.my.salesforce.com): "
                "the client credentials flow is refused on login/test.salesforce.com")
    if "invalid_client_id" in message:
        return "PAYSYNC_SALESFORCE_CLIENT_ID must be the External Client App's consumer key"
    if "invalid_client" in message:
        return "PAYSYNC_SALESFORCE_CLIENT_SECRET must be the External Client App's consumer secret"
    if "request failed" in message:
        return (f"PAYSYNC_SALESFORCE_LOGIN_URL={settings.token_url()} does not answer: check the My Domain name "
                "(Setup → My Domain) and PAYSYNC_SALESFORCE_CA_BUNDLE")
    return ("check the External Client App: OAuth enabled, the flow enabled, Run As = the integration user "
            "(salesforce/README.md step 3)")


def _login(org: OrgSession) -> Check:
    s = org.settings
    try:
        token = org.login()
    except AuthError as exc:
        return fail(SYSTEM, "login", f"flow {s.salesforce_auth_flow} at {s.token_url()}: {exc}", _login_fix(s, str(exc)))
    return ok(SYSTEM, "login", f"flow {s.salesforce_auth_flow} at {s.token_url()}, instance {token.instance_url}")


def _api_version(org: OrgSession) -> Check:
    wanted = org.settings.salesforce_api_version
    status, body = org.get("/services/data")
    versions = [v.get("version") for v in body] if status == 200 and isinstance(body, list) else []
    if wanted in versions:
        return ok(SYSTEM, "API version", f"{wanted} (the org supports up to {versions[-1]})")
    return fail(SYSTEM, "API version", f"{wanted} is not among the org's versions ({', '.join(map(str, versions[-3:]))}…)",
                "set PAYSYNC_SALESFORCE_API_VERSION to a version the org lists at /services/data")


def _field_problems(obj: ExpectedObject, described: dict[str, Any]) -> list[str]:
    by_name = {f["name"]: f for f in described.get("fields", [])}
    problems: list[str] = []
    for want in obj.fields:
        got = by_name.get(want.name)
        if got is None:
            problems.append(f"{want.name} missing (not deployed, or not readable by the integration user)")
            continue
        if want.describe_type and got.get("type") != want.describe_type:
            problems.append(f"{want.name} is {got.get('type')}, the package defines {want.describe_type}")
        elif want.reference_to and want.reference_to not in (got.get("referenceTo") or []):
            problems.append(f"{want.name} looks up {got.get('referenceTo')}, the package: {want.reference_to}")
        elif want.external_id and not got.get("externalId"):
            problems.append(f"{want.name} is not an External ID (upserts by it fail)")
        elif not got.get("updateable") or (obj.create and not got.get("createable")):
            problems.append(f"{want.name} is not editable by the integration user")
    return problems


def _object_check(org: OrgSession, obj: ExpectedObject, described_out: dict[str, dict[str, Any]]) -> Check:
    status, body = org.get(f"/services/data/v{org.settings.salesforce_api_version}/sobjects/{obj.name}/describe")
    if status != 200 or not isinstance(body, dict):
        return fail(SYSTEM, f"object {obj.name}", f"describe answered {status}: missing or not visible", DEPLOY_FIX)
    described_out[obj.name] = body
    access = "createable" if obj.create else "updateable"
    object_ok = bool(body.get("updateable")) and (not obj.create or bool(body.get("createable")))
    problems = ([] if object_ok else [f"the integration user cannot {'create and ' if obj.create else ''}edit it"])
    problems += _field_problems(obj, body)
    if problems:
        return fail(SYSTEM, f"object {obj.name}", "; ".join(problems),
                    f"{DEPLOY_FIX}; then salesforce/README.md step 4 (assign the permission sets)")
    return ok(SYSTEM, f"object {obj.name}", f"{len(obj.fields)} fields, {access}")


def check_salesforce(settings: SalesforceSettings, cfg: MappingConfig, project: Path) -> list[Check]:
    """Every Salesforce check, in order; the org checks are skipped when the login fails."""
    errors = settings.config_errors()
    if errors:
        return [fail(SYSTEM, "settings", "; ".join(errors), "fix the settings named (see .env.example)"),
                skip(SYSTEM, "login and org", "the settings are incomplete")]
    checks = [ok(SYSTEM, "settings", f"flow {settings.salesforce_auth_flow}, API {settings.salesforce_api_version}")]
    org = OrgSession(settings)
    checks.append(_login(org))
    if checks[-1].status == "fail":
        return checks + [skip(SYSTEM, "API version, objects, permission sets", "the login failed")]
    checks.append(_api_version(org))
    expected = expectation(project, cfg)
    described: dict[str, dict[str, Any]] = {}
    checks += [_object_check(org, obj, described) for obj in expected.objects]
    checks += permission_checks(org, expected, described)
    return checks
