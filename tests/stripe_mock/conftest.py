"""stripe-mock (Stripe's OpenAPI-driven mock, pinned) installed if missing and started on a free port.

Installed like `make stripe-mock` does: `go install github.com/stripe/stripe-mock@v0.203.0` into
`$HOME/.cache/paysync/go` (the Go module proxy). Skips only when `go` is not on the machine."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from paysync.net import free_port

VERSION = "v0.203.0"
GOPATH = Path(os.environ.get("STRIPE_MOCK_GOPATH", Path.home() / ".cache" / "paysync" / "go"))
BINARY = GOPATH / "bin" / "stripe-mock"
FIXTURES = GOPATH / "pkg" / "mod" / "github.com" / "stripe" / f"stripe-mock@{VERSION}" / "embedded" / "openapi"


@pytest.fixture(scope="session")
def stripe_mock_binary() -> Path:
    """The pinned binary, installed on first use."""
    if not BINARY.exists():
        if shutil.which("go") is None:
            pytest.skip("go is not installed: stripe-mock cannot be built")
        env = {**os.environ, "GOPATH": str(GOPATH), "GOFLAGS": "-modcacherw"}
        subprocess.run(["go", "install", f"github.com/stripe/stripe-mock@{VERSION}"], env=env, check=True,
                       timeout=600)
    return BINARY


@pytest.fixture(scope="session")
def stripe_mock(stripe_mock_binary: Path) -> Iterator[str]:
    """The base URL of a running stripe-mock."""
    port = free_port()
    proc = subprocess.Popen([str(stripe_mock_binary), "-http-port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("stripe-mock did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
