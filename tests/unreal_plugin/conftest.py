"""Fixtures for the C++ core: build it with CMake once per session, run genworld-core-server.

The build goes to `build/core` (or `GENWORLD_CORE_BUILD` when set, e.g. by scripts/test.sh,
which builds first). Without cmake or the gRPC dev packages the suite skips, unless
`GENWORLD_REQUIRE_CORE` is set: then a missing toolchain or a broken build fails loudly.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CORE_SOURCE = REPO / "unreal_plugin" / "core"
DEFAULT_BUILD = REPO / "build" / "core"
SERVER_BINARY = "genworld-core-server"
# Where Debian's libgrpc++-dev puts its CMake package: the build needs it.
GRPC_CMAKE_CONFIGS = (
    "/usr/lib/x86_64-linux-gnu/cmake/grpc",
    "/usr/lib/aarch64-linux-gnu/cmake/grpc",
    "/usr/lib/cmake/grpc",
)
BUILD_TIMEOUT_S = 600
STOP_TIMEOUT_S = 10
LISTENING_PREFIX = "listening on "


def _toolchain_missing() -> str | None:
    if shutil.which("cmake") is None:
        return "cmake is not installed"
    if shutil.which("grpc_cpp_plugin") is None or not any(Path(p).is_dir() for p in GRPC_CMAKE_CONFIGS):
        return "the gRPC C++ dev packages (libgrpc++-dev, protobuf-compiler-grpc) are not installed"
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("GENWORLD_REQUIRE_CORE"):
        pytest.fail(f"GENWORLD_REQUIRE_CORE is set but the C++ core is unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def core_build() -> Path:
    """The CMake build directory of the core, built here unless GENWORLD_CORE_BUILD is given."""
    given = os.environ.get("GENWORLD_CORE_BUILD")
    build = Path(given) if given else DEFAULT_BUILD
    if not build.is_absolute():
        build = REPO / build
    if not given:
        missing = _toolchain_missing()
        if missing:
            _unavailable(missing)
        for command in (
            ["cmake", "-S", str(CORE_SOURCE), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"],
            ["cmake", "--build", str(build), "-j2"],
        ):
            result = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
            if result.returncode != 0:
                pytest.fail(f"{' '.join(command)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    if not (build / SERVER_BINARY).is_file():
        _unavailable(f"{build / SERVER_BINARY} was not built")
    return build


@dataclass
class CoreServer:
    """A running genworld-core-server."""

    process: subprocess.Popen
    address: str
    width: int
    height: int

    def stop(self) -> int:
        """SIGTERM, then the exit code (0 = graceful shutdown)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_core_server(build: Path, width: int = 64, height: int = 64, token: str | None = None) -> CoreServer:
    """Starts the server on a free port (--port 0) and waits for its 'listening on' line."""
    command = [str(build / SERVER_BINARY), "--port", "0", "--width", str(width), "--height", str(height)]
    if token:
        command += ["--token", token]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    try:
        line = process.stdout.readline().strip()  # blocks until ready (or EOF if it died)
        if not line.startswith(LISTENING_PREFIX):
            raise RuntimeError(f"{SERVER_BINARY} did not start: {line!r} (exit {process.poll()})")
    except BaseException:
        process.kill()
        process.wait()
        raise
    return CoreServer(process, line[len(LISTENING_PREFIX) :], width, height)


@pytest.fixture(scope="session")
def core_server(core_build: Path) -> Iterator[CoreServer]:
    """A 640x480 server shared by the conformance tests; must shut down gracefully."""
    server = start_core_server(core_build, width=640, height=480)
    yield server
    assert server.stop() == 0, "genworld-core-server did not exit 0 on SIGTERM"


@pytest.fixture
def core_clients(core_server: CoreServer):
    """Factory of WorldClients on the shared server, all closed afterwards."""
    from bridge.client import WorldClient

    made: list[WorldClient] = []

    def _client(address: str | None = None, **kwargs) -> WorldClient:
        kwargs.setdefault("timeout_s", 10.0)
        kwargs.setdefault("backoff_s", 0.05)
        made.append(WorldClient(address or core_server.address, **kwargs))
        return made[-1]

    yield _client
    for client in made:
        client.close()
