"""The emulated org: everything a request handler needs, built once by the server."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from emulators.salesforce_emulator.access import Access  # DOCTOR hook
from emulators.salesforce_emulator.auth import Auth
from emulators.salesforce_emulator.dml import Dml
from emulators.salesforce_emulator.faults import Faults
from emulators.salesforce_emulator.metadata import Schema
from emulators.salesforce_emulator.org_modes import OrgMode
from emulators.salesforce_emulator.store import Store


@dataclass
class Org:
    schema: Schema
    store: Store
    faults: Faults
    auth: Auth
    page_size: int = 2000
    mode: OrgMode = field(default_factory=OrgMode)
    view_setup: bool = False  # the integration user's permission set grants View Setup and Configuration
    access: Access | None = None  # DOCTOR hook: assigned permission sets (access.py)
    dml: Dml = field(init=False)
    cursors: dict[str, tuple[list[dict[str, Any]], int]] = field(default_factory=dict)
    cursor_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.dml = Dml(self.store, self.faults, self.mode)

    def new_cursor(self, rows: list[dict[str, Any]], total: int) -> str:
        cid = "01g5g" + uuid.uuid4().hex[:10].upper()
        with self.cursor_lock:
            self.cursors[cid] = (rows, total)
        return cid
