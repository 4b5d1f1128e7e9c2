"""Bulk API 2.0 ingest: create → upload CSV (201) → UploadComplete → InProgress → JobComplete | Failed | Aborted,
with `successfulResults`, `failedResults` and `unprocessedrecords` CSVs.

Jobs run in the background, each on its own thread (several at once), at a real org's pace: a closed job waits
`bulk_queue_s` in `UploadComplete` ("Job States": "All job data has been uploaded and the job is ready to be
processed."), then is `InProgress` ("The job is being processed by Salesforce.") at `bulk_records_per_s`.
Every HTTP request of a job (create, upload, close, each status poll, each result download) is one API call,
counted by the server like any REST call. Bulk 2.0 "Limits": "Each org is only able to handle a certain number of
API requests within a 24-hour period. Budget your overall API consumption to account for what each integration
does against the org." (no sentence exempts Bulk requests; counting each one is the strict reading). The pace
defaults (3 s queued, 3,000 records/s) are typical figures, not documented ones: "Bulk API and Bulk API 2.0 Limits
and Allocations" only says "Jobs with fewer than 2,000 records should involve 'bulkified' synchronous calls in REST
(for example, Composite) or SOAP."

CSV rules as on Salesforce: header = API names (case-insensitive), `Rel__r.Ext_Id__c` columns resolve parents
by external id, empty value = leave unchanged, `#N/A` = null. An unknown column fails the whole job
(`InvalidBatch : Field name not found : X`). Per-record errors: `sf__Error` = `CODE:message:fields --`.
"""

from __future__ import annotations

import csv
import io
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from emulators.salesforce_emulator.auth import USER_ID
from emulators.salesforce_emulator.dml import SaveResult
from emulators.salesforce_emulator.org import Org
from emulators.salesforce_emulator.values import FieldError, now_datetime
from emulators.salesforce_emulator.wire import Request, Response, csv_response, error, json_response

DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
OPERATIONS = ("insert", "upsert", "update")
CHUNK = 1000


@dataclass
class Job:
    info: dict[str, Any]
    data: bytes = b""
    header: list[str] = field(default_factory=list)
    successful: list[list[str]] = field(default_factory=list)
    failed: list[list[str]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)
    aborted: threading.Event = field(default_factory=threading.Event)


def _sf_error(errors: list[FieldError]) -> str:
    return " ".join(f"{e.code}:{e.message}:{','.join(e.fields)} --" for e in errors)


class Bulk:
    """The ingest jobs of the org (kept in memory) and their processing threads."""

    def __init__(self, org: Org) -> None:
        self.org = org
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def handle(self, req: Request, version: str, parts: list[str]) -> Response:
        """`/jobs/ingest[/{id}[/batches | /successfulResults | /failedResults | /unprocessedrecords]]`."""
        if not parts:
            if req.method == "POST":
                return self._create(req, version)
            if req.method == "GET":
                with self._lock:
                    infos = [dict(j.info) for j in self.jobs.values()]
                return json_response(200, {"done": True, "records": infos, "nextRecordsUrl": None})
            return error(405, "METHOD_NOT_ALLOWED", "Method not allowed")
        job = self.jobs.get(parts[0])
        if job is None:
            return error(404, "NOT_FOUND", "The requested resource does not exist")
        sub = parts[1].lower().rstrip("/") if len(parts) > 1 else ""
        if not sub:
            if req.method == "GET":
                return json_response(200, dict(job.info))
            if req.method == "PATCH":
                return self._set_state(job, req)
            if req.method == "DELETE":
                if job.info["state"] in ("Open", "UploadComplete", "InProgress"):
                    return error(400, "INVALIDJOBSTATE", "Deleting a job in an open or in-progress state is not "
                                 "allowed")
                with self._lock:
                    self.jobs.pop(job.info["id"], None)
                return Response(204)
        if sub == "batches" and req.method == "PUT":
            if job.info["state"] != "Open" or job.data:
                return error(400, "INVALIDJOBSTATE", "Uploading data to a job that is not open is not allowed")
            job.data = req.body
            return Response(201)
        results = {"successfulresults": ("sf__Id", "sf__Created"), "failedresults": ("sf__Id", "sf__Error"),
                   "unprocessedrecords": ()}
        if sub in results and req.method == "GET":
            rows = {"successfulresults": job.successful, "failedresults": job.failed,
                    "unprocessedrecords": job.unprocessed}[sub]
            return csv_response(self._csv(job, list(results[sub]) + job.header, rows))
        return error(404, "NOT_FOUND", "The requested resource does not exist")

    def _csv(self, job: Job, header: list[str], rows: list[list[str]]) -> str:
        out = io.StringIO()
        writer = csv.writer(out, delimiter=DELIMITERS[job.info["columnDelimiter"]], lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return out.getvalue()

    def _create(self, req: Request, version: str) -> Response:
        try:
            body = req.json()
        except ValueError:
            return error(400, "JSON_PARSER_ERROR", "Malformed JSON")
        if not isinstance(body, dict):
            return error(400, "JSON_PARSER_ERROR", "Malformed JSON")
        obj = self.org.schema.get(str(body.get("object", "")))
        op = body.get("operation")
        if obj is None:
            return error(400, "INVALIDENTITY", f"Entity '{body.get('object')}' is not supported by the Bulk API.")
        if op not in OPERATIONS:
            return error(400, "INVALIDJOB", f"InvalidJob : Operation {op} is not supported")
        ext = body.get("externalIdFieldName") or ("Id" if op == "upsert" else None)
        if op == "upsert":
            f = obj.field(str(ext))
            if f is None or not (f.external_id or f.name == "Id"):
                return error(400, "INVALIDJOB", f"InvalidJob : Field name provided, {ext} is not an External ID "
                             f"or indexed field for {obj.name}")
            ext = f.name
        delimiter = body.get("columnDelimiter", "COMMA")
        if delimiter not in DELIMITERS or body.get("contentType", "CSV") != "CSV":
            return error(400, "INVALIDJOB", "InvalidJob : unsupported columnDelimiter or contentType")
        jid = "7505g" + uuid.uuid4().hex[:10].upper() + "AAA"
        now = now_datetime()
        info = {"id": jid, "operation": op, "object": obj.name, "createdById": USER_ID, "createdDate": now,
                "systemModstamp": now, "state": "Open", "externalIdFieldName": ext, "concurrencyMode": "Parallel",
                "contentType": "CSV", "apiVersion": float(version), "jobType": "V2Ingest",
                "contentUrl": f"services/data/v{version}/jobs/ingest/{jid}/batches",
                "lineEnding": body.get("lineEnding", "LF"), "columnDelimiter": delimiter,
                "numberRecordsProcessed": 0, "numberRecordsFailed": 0, "retries": 0, "totalProcessingTime": 0,
                "apiActiveProcessingTime": 0, "apexProcessingTime": 0}
        with self._lock:
            self.jobs[jid] = Job(info)
        return json_response(200, info)

    def _set_state(self, job: Job, req: Request) -> Response:
        try:
            state = (req.json() or {}).get("state")
        except (ValueError, AttributeError):
            return error(400, "JSON_PARSER_ERROR", "Malformed JSON")
        current = job.info["state"]
        if state == "Aborted" and current in ("Open", "UploadComplete", "InProgress"):
            job.info["state"] = "Aborted"
            job.aborted.set()
        elif state == "UploadComplete" and current == "Open":
            job.info["state"] = "UploadComplete"
            threading.Thread(target=self._process, args=(job,), name=f"bulk-{job.info['id']}", daemon=True).start()
        else:
            return error(400, "INVALIDJOBSTATE", f"Invalid job state transition from {current} to {state}")
        job.info["systemModstamp"] = now_datetime()
        return json_response(200, dict(job.info))

    def _columns(self, job: Job, obj: Any) -> list[tuple[str, str | None]] | str:
        """The CSV header as (field or relationship name, parent field) pairs, or the unknown column's name."""
        columns: list[tuple[str, str | None]] = []
        for col in job.header:
            rel, _, parent_field = col.partition(".")
            if parent_field:
                lookup = obj.relationship(rel)
                if lookup is None:
                    return col
                columns.append((lookup.relationship, parent_field))
            else:
                f = obj.field(col)
                if f is None:
                    return col
                columns.append((f.name, None))
        return columns

    def _process(self, job: Job) -> None:
        info = job.info
        if job.aborted.wait(self.org.faults.knobs.bulk_queue_s):
            return
        started = time.monotonic()
        obj = self.org.schema.objects[info["object"]]
        text = job.data.decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=DELIMITERS[info["columnDelimiter"]]))
        job.header = rows[0] if rows else []
        rows = [r for r in rows[1:] if r]
        columns = self._columns(job, obj)
        if isinstance(columns, str):
            job.unprocessed = rows
            self._finish(job, started, "Failed", f"InvalidBatch : Field name not found : {columns}")
            return
        info["state"] = "InProgress"
        rate = self.org.faults.knobs.bulk_records_per_s
        step = max(1, min(CHUNK, rate // 10))
        for start in range(0, len(rows), step):
            if job.aborted.is_set():
                job.unprocessed.extend(rows[start:])
                break
            self._chunk(job, obj, columns, rows[start:start + step])
            info["numberRecordsProcessed"] = len(job.successful) + len(job.failed)
            info["numberRecordsFailed"] = len(job.failed)
            pace = info["numberRecordsProcessed"] / rate - (time.monotonic() - started)
            if pace > 0 and job.aborted.wait(pace):
                job.unprocessed.extend(rows[start + step:])
                break
        if info["state"] != "Aborted":
            self._finish(job, started, "JobComplete", None)

    def _chunk(self, job: Job, obj: Any, columns: list[tuple[str, str | None]], rows: list[list[str]]) -> None:
        op, ext = job.info["operation"], job.info["externalIdFieldName"]
        with self.org.store.lock:
            txn = self.org.store.txn()
            for row in rows:
                values: dict[str, Any] = {}
                refs: dict[str, tuple[str, Any]] = {}
                result: SaveResult | None = None
                if len(row) != len(columns):
                    result = SaveResult(None, False, errors=[FieldError(
                        "INVALID_FIELD", "TooManyColumns or too few columns in the row", [])])
                else:
                    for (name, parent_field), raw in zip(columns, row):
                        if raw == "":
                            continue
                        value = None if raw == "#N/A" else raw
                        if parent_field is None:
                            values[name] = value
                        else:
                            refs[name] = (parent_field, value)
                    ext_value = None
                    if op == "upsert":
                        key = next((k for k in values if k.lower() == ext.lower()), None)
                        ext_value = values.pop(key) if key else None
                    result = self.org.dml.save(txn, obj, values, refs, op, ext, ext_value)
                if result.success:
                    job.successful.append([result.id or "", "true" if result.created else "false", *row])
                else:
                    job.failed.append([result.id or "", _sf_error(result.errors), *row])
            txn.commit()

    def _finish(self, job: Job, started: float, state: str, message: str | None) -> None:
        info = job.info
        elapsed = int((time.monotonic() - started) * 1000)
        info.update({"totalProcessingTime": elapsed, "apiActiveProcessingTime": elapsed,
                     "numberRecordsProcessed": len(job.successful) + len(job.failed),
                     "numberRecordsFailed": len(job.failed), "systemModstamp": now_datetime()})
        if message:
            info["errorMessage"] = message
        info["state"] = state
