"""Fixtures for the gRPC tests: servers on 127.0.0.1 (port 0) and clients, all closed after."""

import pytest

from bridge.client import WorldClient
from bridge.server import serve
from tests.bridge.grpc_helpers import Factory


@pytest.fixture
def start():
    servers = []

    def _start(world=None, **kwargs):
        server = serve(world if world is not None else Factory(), **kwargs)
        servers.append(server)
        return server

    yield _start
    for server in servers:
        server.stop(grace=None)


@pytest.fixture
def clients():
    made = []

    def _client(address, **kwargs):
        kwargs.setdefault("timeout_s", 5.0)
        kwargs.setdefault("backoff_s", 0.05)
        made.append(WorldClient(address, **kwargs))
        return made[-1]

    yield _client
    for client in made:
        client.close()
