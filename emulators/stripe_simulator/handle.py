"""`start_simulator(...)`: the simulator in a subprocess (its own GIL), for tests, the demo, chaos and benchmarks."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, cast

import httpx

from paysync.net import free_port


class SimulatorError(RuntimeError):
    """The simulator did not start, or a run failed."""


@dataclass
class SimulatorHandle:
    """A running simulator: `.base_url` for the `stripe` library (`api_base`), `.api_key`, admin helpers."""

    base_url: str
    api_key: str
    webhook_secrets: list[str]
    process: subprocess.Popen[bytes]
    _client: httpx.Client = field(repr=False)

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call an admin endpoint (`/_sim/...`) and return its JSON."""
        response = self._client.request(method, f"{self.base_url}{path}", json=body)
        if response.status_code >= 400:
            raise SimulatorError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json()

    def generate(self, wait: bool = True, timeout: float = 300.0, **params: Any) -> dict[str, Any]:
        """Start a run (`events=`, `rate=`, `burst=`, ScenarioParams fields); wait until done if asked."""
        self.admin("POST", "/_sim/generate", params)
        return self.wait_done(timeout) if wait else self.status()

    def wait_done(self, timeout: float = 300.0) -> dict[str, Any]:
        """Poll `/_sim/status` until generation is over and no delivery is pending."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if status["error"]:
                raise SimulatorError(status["error"])
            if status["done"] and status["runs"]:
                return status
            if time.monotonic() > deadline:
                raise SimulatorError(f"not done after {timeout}s: {status}")
            time.sleep(0.05)

    def status(self) -> dict[str, Any]:
        """`GET /_sim/status`."""
        return cast(dict[str, Any], self.admin("GET", "/_sim/status"))

    def configure(self, **knobs: Any) -> dict[str, Any]:
        """`POST /_sim/config`."""
        return cast(dict[str, Any], self.admin("POST", "/_sim/config", knobs))

    def stats(self) -> dict[str, int]:
        """API requests counted by endpoint."""
        return cast(dict[str, int], self.admin("GET", "/_sim/stats"))

    def stats_by_account(self) -> dict[str, dict[str, int]]:
        """API requests counted by account asked as (`""` = the platform), then by endpoint."""
        return cast(dict[str, dict[str, int]], self.admin("GET", "/_sim/stats/accounts"))

    def truth(self) -> list[dict[str, Any]]:
        """The truth export, parsed."""
        response = self._client.get(f"{self.base_url}/_sim/truth")
        return [json.loads(line) for line in response.text.splitlines() if line]

    def stop(self) -> None:
        """Stop the subprocess."""
        self._client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> SimulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_simulator(seed: int = 0, port: int = 0, api_key: str = "sk_test_simulator",
                    webhook_url: str | None = None, webhook_secrets: list[str] | None = None,
                    rate_limit: float = 0.0, clock: str = "fixed", start_time: int | str | None = None,
                    startup_timeout: float = 30.0, **knobs: Any) -> SimulatorHandle:
    """Start the simulator on 127.0.0.1 (`port=0`: a free port); `knobs` are delivery knobs or ScenarioParams."""
    port = port or free_port()
    secrets = webhook_secrets or ["whsec_simulator"]
    argv = [sys.executable, "-m", "emulators.stripe_simulator.cli", "serve", "--port", str(port), "--seed", str(seed),
            "--api-key", api_key, "--clock", clock, "--rate-limit", str(rate_limit), "--knobs", json.dumps(knobs)]
    for secret in secrets:
        argv += ["--webhook-secret", secret]
    if webhook_url:
        argv += ["--webhook-url", webhook_url]
    if start_time is not None:
        argv += ["--start-time", str(start_time)]
    log_file = tempfile.TemporaryFile()  # noqa: SIM115 - read on failure, closed with the process
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log_file)
    handle = SimulatorHandle(f"http://127.0.0.1:{port}", api_key, secrets, process, httpx.Client(timeout=30))
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log_file.seek(0)
            err = log_file.read().decode(errors="replace")
            raise SimulatorError(f"simulator exited with {process.returncode}: {err[-2000:]}")
        try:
            handle.status()
            return handle
        except (httpx.HTTPError, SimulatorError):
            time.sleep(0.05)
    handle.stop()
    raise SimulatorError(f"simulator did not answer on port {port} within {startup_timeout}s")
