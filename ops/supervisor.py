"""Runs paysync components as child processes: start, watch, restart on crash, stop cleanly.

Used by `paysync run` (all components on one machine), the demo and the chaos runner (which kills
components on purpose and lets the supervisor bring them back).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("paysync.supervisor")


@dataclass
class Component:
    """One child: `paysync <command> <args…>` with its own environment and log file."""

    name: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    restart: bool = True
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0


class Supervisor:
    """Starts components, restarts the ones that die (unless stopping), stops them all on exit."""

    def __init__(self, log_dir: Path, base_env: dict[str, str] | None = None, restart_delay: float = 1.0) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.restart_delay = restart_delay
        self.components: dict[str, Component] = {}
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watcher = threading.Thread(target=self._watch, name="supervisor", daemon=True)

    def add(self, name: str, args: list[str], env: dict[str, str] | None = None, restart: bool = True) -> Component:
        """Register and start `paysync <args…>` as component `name`."""
        comp = Component(name, [sys.executable, "-m", "ops.cli", *args], dict(env or {}), restart)
        with self._lock:
            self.components[name] = comp
            self._spawn(comp)
        if not self._watcher.is_alive():
            self._watcher.start()
        return comp

    def _spawn(self, comp: Component) -> None:
        out = open(self.log_dir / f"{comp.name}.log", "ab")  # noqa: SIM115 - handed to the child
        comp.process = subprocess.Popen(
            comp.command, env={**self.base_env, **comp.env}, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        out.close()
        comp.started_at = time.monotonic()
        log.info("component started", extra={"component": comp.name, "pid": comp.process.pid})

    def _watch(self) -> None:
        while not self._stopping.wait(0.2):
            with self._lock:
                for comp in self.components.values():
                    proc = comp.process
                    if proc is None or proc.poll() is None or not comp.restart:
                        continue
                    if time.monotonic() - comp.started_at < self.restart_delay:
                        continue
                    log.warning("component exited; restarting",
                                extra={"component": comp.name, "returncode": proc.returncode})
                    comp.restarts += 1
                    self._spawn(comp)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int | None:
        """Send `sig` to a component (chaos); the watcher restarts it. Returns the pid signalled."""
        comp = self.components[name]
        if comp.process is None or comp.process.poll() is not None:
            return None
        pid = comp.process.pid
        os.killpg(pid, sig)
        return pid

    def alive(self, name: str) -> bool:
        comp = self.components.get(name)
        return bool(comp and comp.process and comp.process.poll() is None)

    def failed(self) -> list[str]:
        """Components that exited and will not be restarted."""
        return [c.name for c in self.components.values()
                if not c.restart and c.process is not None and c.process.poll() not in (None, 0)]

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM every component, SIGKILL what is left after `grace` seconds."""
        self._stopping.set()
        with self._lock:
            procs = [c.process for c in self.components.values() if c.process and c.process.poll() is None]
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()

    def __enter__(self) -> "Supervisor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
