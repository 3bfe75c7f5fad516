"""Shared fixtures: real local services and the event-loop blocking guard.

Integration tests talk to real parts: an ``anvil`` node from the project's npm install
and a ``mosquitto`` broker started on a free port (so a test may kill and restart it
without touching the machine's own broker on 1883).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NODE_BIN = ROOT / "node_modules" / ".bin"
SHARED = ROOT.parent / "shared"

# anvil's first default account (its well-known development mnemonic); never a real key.
ANVIL_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ANVIL_KEY_1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Anvil:
    url: str
    port: int
    chain_id: int
    process: subprocess.Popen[bytes]


def start_anvil(port: int | None = None, chain_id: int = 31337) -> Anvil:
    binary = NODE_BIN / "anvil"
    if not binary.exists():
        pytest.fail(f"anvil not found at {binary}: run scripts/setup")
    port = port or free_port()
    proc = subprocess.Popen(
        [
            str(binary),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--chain-id",
            str(chain_id),
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port)
    except TimeoutError:
        _stop(proc)
        raise
    return Anvil(url=f"http://127.0.0.1:{port}", port=port, chain_id=chain_id, process=proc)


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    node = start_anvil()
    try:
        yield node
    finally:
        _stop(node.process)


@pytest.fixture(scope="module")
def anvil_module() -> Iterator[Anvil]:
    node = start_anvil()
    try:
        yield node
    finally:
        _stop(node.process)


@dataclass
class Broker:
    host: str
    port: int
    config: Path
    process: subprocess.Popen[bytes] | None

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.process = subprocess.Popen(
            [binary, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    if not (shutil.which("mosquitto") or os.path.exists("/usr/sbin/mosquitto")):
        pytest.fail("mosquitto binary not found (the python-svc machine ships it)")
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_inflight_messages 0\nmax_queued_messages 100000\n"
    )
    broker = Broker(host="127.0.0.1", port=port, config=config, process=None)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


class _SlowCallbackCatcher(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "took" in message and "Executing" in message:
            self.messages.append(message)


@pytest.fixture
async def _no_blocking_calls() -> AsyncIterator[None]:
    """Fail any async test whose event loop was blocked for more than 0.5 s.

    Uses asyncio's debug mode, which logs every callback that runs longer than
    ``slow_callback_duration``; a blocking call inside a coroutine shows up there.
    """
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = 0.5
    catcher = _SlowCallbackCatcher()
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.addHandler(catcher)
    try:
        yield
    finally:
        asyncio_logger.removeHandler(catcher)
        loop.set_debug(False)
    if catcher.messages:
        pytest.fail("event loop blocked: " + "; ".join(catcher.messages[:3]))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        function = getattr(item, "function", None)
        if function is not None and inspect.iscoroutinefunction(function):
            fixturenames = getattr(item, "fixturenames", None)
            if fixturenames is not None and "_no_blocking_calls" not in fixturenames:
                fixturenames.insert(0, "_no_blocking_calls")
