"""The gRPC server under bad input, failures, auth, version skew, limits, restarts, signals.

Every case checks that the server answers with a clear status and keeps serving.
"""

import datetime
import ipaddress
import math
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from bridge.client import WorldClient
from bridge.grpc_status import SERVICE_NAME, SESSION_METADATA_KEY
from bridge.proto_gen.genworld.v1 import types_pb2 as pb
from bridge.proto_gen.genworld.v1 import world_service_pb2 as service_pb
from bridge.types import (
    PROTOCOL_VERSION,
    Action,
    ConnectionLostError,
    InvalidArgumentError,
    ResourceExhaustedError,
    SessionLostError,
    UnauthenticatedError,
    VersionMismatchError,
    WorldError,
)
from tests.bridge.grpc_helpers import (
    FORWARD,
    Factory,
    GradientWorld,
    assert_same,
    raw_channel,
    raw_unary,
    rpc_code,
)

pytestmark = pytest.mark.timeout(60)


def test_bad_input_is_refused_while_another_client_keeps_stepping(start, clients):
    factory = Factory()
    server = start(factory)
    good, bad = clients(server.address), clients(server.address, stream=True)
    local = GradientWorld()
    good.reset(), local.reset(), bad.reset()
    channel = raw_channel(server)
    metadata = ((SESSION_METADATA_KEY, bad.session_id),)

    def good_steps():
        remote, expected = good.step({"agent_0": FORWARD}), local.step({"agent_0": FORWARD})
        assert_same(expected["agent_0"], remote["agent_0"])

    nan_pose = service_pb.SetPoseRequest(agent_id="agent_0", pose=pb.Pose(x=math.nan, qw=1.0))
    code, details = rpc_code(raw_unary(channel, "SetPose"), nan_pose.SerializeToString(), metadata=metadata)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "SetPoseRequest.pose.x is nan" in details
    good_steps()
    with pytest.raises(InvalidArgumentError, match="NaN"):
        bad.set_pose("agent_0", np.full((4, 4), np.nan))  # refused before it is even sent
    good_steps()
    with pytest.raises(InvalidArgumentError, match="unknown agent 'ghost'"):
        bad.step({"ghost": FORWARD})
    good_steps()
    with pytest.raises(InvalidArgumentError, match=r"actions\[0\]\.nav.*shape \(6,\)"):
        bad.step({"agent_0": Action(nav_vector=np.zeros(5))})
    good_steps()
    with pytest.raises(InvalidArgumentError, match=r"actions\[0\]\.key"):
        bad.step({"agent_0": Action(key=42)})
    good_steps()

    huge = b"\x00" * (100 * 2**20)
    code, details = rpc_code(raw_unary(channel, "Reset"), huge, metadata=metadata)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, details
    good_steps()
    with pytest.raises(ResourceExhaustedError):
        bad.reset(options={"blob": "x" * (100 * 2**20)})
    good_steps()

    for method in ("Handshake", "Reset", "Step", "SetPose", "Close"):
        code, details = rpc_code(raw_unary(channel, method), b"\xff\xff\xff\xff", metadata=metadata)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "not a valid" in details, (method, details)
        good_steps()

    # The misbehaving client's own session survived all of it.
    bad.reset()
    bad.step({"agent_0": FORWARD})
    assert factory.made[0].steps == 12  # every good step, one per refused request
    assert factory.made[1].steps == 1  # none of the refused requests reached the engine
    channel.close()


def test_unknown_session_is_not_found(start):
    server = start()
    with raw_channel(server) as channel:
        code, details = rpc_code(
            raw_unary(channel, "Step"),
            service_pb.StepRequest(step_id=1).SerializeToString(),
            metadata=((SESSION_METADATA_KEY, "deadbeef"),),
        )
    assert code == grpc.StatusCode.NOT_FOUND and "unknown or expired session" in details


def test_engine_exception_is_internal_and_the_server_keeps_serving(start, clients):
    world = GradientWorld()
    server = start(world)  # a shared instance: every session drives this one world
    client, other = clients(server.address), clients(server.address)
    client.reset()
    world.fail_next_step = True
    with pytest.raises(WorldError, match="engine exploded") as info:
        client.step({"agent_0": FORWARD})
    assert "INTERNAL" in str(info.value) and type(info.value) is WorldError
    assert client.step({"agent_0": FORWARD})["agent_0"].frame_id == 1
    other.reset()
    assert other.step({})["agent_1"].frame_id == 1
    other.close()
    assert not world.closed  # the caller owns a shared world


def test_a_failing_world_factory_is_internal_and_the_server_keeps_serving(start, clients):
    calls = []

    def flaky() -> GradientWorld:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("no GPU today")
        return GradientWorld()

    server = start(flaky)
    with pytest.raises(WorldError, match="no GPU today"):
        clients(server.address)
    assert server.session_count == 0
    clients(server.address).reset()


def test_run_server_fails_fast_on_a_bad_configuration():
    from bridge.server import run_server

    common = dict(scene="rooms", resolution=(8, 8), num_agents=1, host="127.0.0.1", port=0, token=None)
    assert run_server(world="nope", tls_cert=None, tls_key=None, max_sessions=1, **common) == 1
    assert run_server(world="mujoco", tls_cert="cert.pem", tls_key=None, max_sessions=1, **common) == 2


# ----------------------------------------------------------------------------- auth, versions
def test_token_auth(start, clients):
    server = start(token="s3cret")
    with pytest.raises(UnauthenticatedError, match="missing token"):
        clients(server.address)
    with pytest.raises(UnauthenticatedError, match="wrong token"):
        clients(server.address, token="guess")
    client = clients(server.address, token="s3cret", stream=True)
    client.reset()
    client.step({})
    with raw_channel(server) as channel:
        call = channel.stream_stream(f"/{SERVICE_NAME}/StepStream")(iter([b""]))
        with pytest.raises(grpc.RpcError) as info:
            list(call)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_major_version_mismatch_is_refused_minor_is_warned(start, clients, monkeypatch):
    server = start()
    monkeypatch.setattr("bridge.client.PROTOCOL_VERSION", "2.0.0")
    with pytest.raises(VersionMismatchError, match=rf"client 2\.0\.0, server {PROTOCOL_VERSION}"):
        clients(server.address)
    monkeypatch.setattr("bridge.client.PROTOCOL_VERSION", "1.9.0")
    info = clients(server.address).handshake()
    assert "minor version differs" in info.extra["message"]


def test_session_limit(start, clients):
    server = start(max_sessions=2)
    first, _ = clients(server.address), clients(server.address)
    with pytest.raises(ResourceExhaustedError, match="limit of 2 sessions"):
        clients(server.address)
    first.close()
    clients(server.address).reset()


def test_idle_sessions_expire_and_close_their_world(start, clients):
    factory = Factory()
    server = start(factory, session_idle_timeout_s=0.2)
    client = clients(server.address)
    client.reset()
    deadline = time.monotonic() + 5.0
    while server.session_count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.session_count == 0 and factory.made[0].closed
    with pytest.raises(SessionLostError, match="call reset"):
        client.step({})
    client.reset()  # a fresh session
    client.step({})


# ----------------------------------------------------------------------------- restarts
def test_client_recovers_after_a_server_restart_on_the_same_port(start, clients):
    server = start()
    port = server.port
    client = clients(server.address, stream=True)
    client.reset()
    client.step({"agent_0": FORWARD})
    lost_session = client.session_id

    server.stop(grace=None)
    restarted = start(port=port)
    with pytest.raises(SessionLostError, match="world state"):
        client.step({"agent_0": FORWARD})
    with pytest.raises(SessionLostError, match="call reset"):
        client.set_pose("agent_0", np.eye(4))
    observations = client.reset(seed=1)
    assert client.session_id != lost_session and observations["agent_0"].frame_id == 0
    assert client.step({"agent_0": FORWARD})["agent_0"].frame_id == 1

    # After another restart, reset() alone just works.
    restarted.stop(grace=None)
    start(port=port)
    assert client.reset()["agent_0"].frame_id == 0


def test_unreachable_server_is_a_connection_lost_error():
    with pytest.raises(ConnectionLostError, match="after 3 attempts"):
        WorldClient("127.0.0.1:1", timeout_s=0.5, max_retries=2, backoff_s=0.01)


# ----------------------------------------------------------------------------- TLS
def _self_signed_certificate() -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def test_tls_with_token(start, clients):
    pytest.importorskip("cryptography")
    cert, key = _self_signed_certificate()
    server = start(tls=(cert, key), token="t")
    client = clients(server.address, root_certificates=cert, token="t")
    client.reset()
    assert client.step({})["agent_0"].frame_id == 1
    with pytest.raises(WorldError):  # plaintext against a TLS port never gets an answer
        clients(server.address, token="t", timeout_s=0.5, max_retries=1)


# ----------------------------------------------------------------------------- shutdown
SERVER_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})
    from bridge.server import serve, serve_until_signal
    from tests.bridge.test_server_client import Factory

    factory = Factory()
    server = serve(factory)
    print("READY", server.port, flush=True)
    code = serve_until_signal(server)
    print("CLOSED", all(w.closed for w in factory.made), len(factory.made), flush=True)
    sys.exit(code)
    """
)


def test_sigterm_shuts_down_gracefully_closing_every_world(tmp_path):
    script = tmp_path / "serve.py"
    script.write_text(SERVER_SCRIPT.format(root=str(Path(__file__).resolve().parents[2])))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        ready = proc.stdout.readline().split()
        assert ready[0] == "READY", ready
        with WorldClient(f"127.0.0.1:{ready[1]}", timeout_s=5.0) as client:
            client.reset()
            client.step({})
            proc.terminate()  # SIGTERM while the client still holds its session
            assert proc.wait(timeout=10) == 0
        assert proc.stdout.read().split() == ["CLOSED", "True", "1"]
    finally:
        proc.kill()


def test_genworld_serve_exits_0_on_sigterm():
    pytest.importorskip("bridge.engines.mujoco_world", reason="MuJoCo engine not landed yet")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cmd = [sys.executable, "-m", "bridge.cli", "serve", "--port", str(port), "--resolution", "16x16"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:  # the readable "serving ..." line means it is up
            if "serving mujoco" in line:
                assert f"grpc://127.0.0.1:{port}" in line and "token not required" in line
                break
        with WorldClient(f"127.0.0.1:{port}", timeout_s=30.0) as client:
            assert client.reset()[client.handshake().agent_ids[0]].rgb.shape == (16, 16, 3)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()


# ----------------------------------------------------------------------------- MuJoCo
