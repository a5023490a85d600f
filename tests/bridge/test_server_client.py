"""WorldClient ↔ serve() over real gRPC on 127.0.0.1 (port 0).

The in-test GradientWorld is a real, deterministic World: its frames are gradients that
depend on the camera pose, so a wrong pose, a replayed step or a mixed-up session shows
up as different pixels.
"""

import datetime
import ipaddress
import math
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import grpc
import numpy as np
import pytest

from bridge import wire
from bridge.actions import NavLimits, action_to_nav, integrate_nav
from bridge.client import WorldClient
from bridge.conventions import intrinsics_from_fov, look_at
from bridge.grpc_status import SERVICE_NAME, SESSION_METADATA_KEY
from bridge.proto_gen.genworld.v1 import types_pb2 as pb
from bridge.proto_gen.genworld.v1 import world_service_pb2 as service_pb
from bridge.server import serve
from bridge.types import (
    CAPABILITY_DEPTH,
    CAPABILITY_RGB,
    CAPABILITY_SET_POSE,
    CAPABILITY_STEP_STREAM,
    PROTOCOL_VERSION,
    Action,
    ConnectionLostError,
    FailedPreconditionError,
    InvalidArgumentError,
    Observation,
    ResourceExhaustedError,
    SessionLostError,
    UnauthenticatedError,
    VersionMismatchError,
    WorldError,
    WorldInfo,
)

pytestmark = pytest.mark.timeout(60)

SMALL = (24, 32)
FORWARD = Action.from_key(1)


class GradientWorld:
    """A deterministic World whose frames are gradients shifted by the camera pose."""

    def __init__(self, height: int = SMALL[0], width: int = SMALL[1], agents=("agent_0", "agent_1")):
        self.height, self.width, self.agents = height, width, tuple(agents)
        self.K = intrinsics_from_fov(width, height, 60.0)
        self.steps = 0  # engine steps actually taken: idempotent retries must not add any
        self.closed = False
        self.fail_next_step = False
        self.poses: dict[str, np.ndarray] = {}
        self.t = 0

    def handshake(self) -> WorldInfo:
        return WorldInfo(
            name="gradient",
            capabilities=(CAPABILITY_RGB, CAPABILITY_DEPTH, CAPABILITY_SET_POSE),
            agent_ids=self.agents,
            height=self.height,
            width=self.width,
        )

    def reset(self, seed=None, options: Mapping | None = None) -> dict[str, Observation]:
        self.t = 0
        offset = float(seed or 0) + float((options or {}).get("offset", 0.0))
        self.poses = {
            a: look_at([i + offset, 0.0, 1.0], [i + offset, 5.0, 1.0]) for i, a in enumerate(self.agents)
        }
        return {a: self._observe(a) for a in self.agents}

    def step(self, actions: Mapping[str, Action]) -> dict[str, Observation]:
        if self.fail_next_step:
            self.fail_next_step = False
            raise RuntimeError("engine exploded")
        self.steps += 1
        self.t += 1
        for agent in self.agents:
            nav = action_to_nav(actions.get(agent, Action.noop()))
            self.poses[agent] = integrate_nav(self.poses[agent], nav, NavLimits())
        return {a: self._observe(a) for a in self.agents}

    def set_pose(self, agent_id: str, pose) -> Observation:
        if agent_id not in self.agents:
            raise InvalidArgumentError(f"unknown agent {agent_id!r}")
        self.poses[agent_id] = np.asarray(pose, dtype=np.float64)
        return self._observe(agent_id)

    def close(self) -> None:
        self.closed = True

    def _observe(self, agent: str) -> Observation:
        x, y, z = self.poses[agent][:3, 3]
        v, u = np.mgrid[0 : self.height, 0 : self.width]
        rgb = np.stack([(u + 10 * x) % 256, (v + 10 * y) % 256, np.full_like(u, self.t % 256)], axis=-1)
        return Observation(
            rgb=rgb.astype(np.uint8),
            depth=(1.0 + u / self.width + z).astype(np.float32),
            pose=self.poses[agent].copy(),
            K=self.K,
            frame_id=self.t,
            sim_time=0.1 * self.t,
        )


class Factory:
    """World factory that remembers what it made."""

    def __init__(self, height: int = SMALL[0], width: int = SMALL[1]):
        self.size = (height, width)
        self.made: list[GradientWorld] = []

    def __call__(self) -> GradientWorld:
        self.made.append(GradientWorld(*self.size))
        return self.made[-1]


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


def assert_same(a: Observation, b: Observation) -> None:
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.depth, b.depth)
    np.testing.assert_allclose(a.pose, b.pose, atol=1e-9)
    np.testing.assert_allclose(a.K, b.K)
    assert (a.frame_id, a.sim_time, a.collided) == (b.frame_id, b.sim_time, b.collided)


def raw_channel(server, **options):
    opts = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    return grpc.insecure_channel(server.address, options=opts + list(options.items()))


def raw_unary(channel, method: str):
    """A method called with raw bytes in and out (no protobuf in the way)."""
    return channel.unary_unary(f"/{SERVICE_NAME}/{method}")


def rpc_code(call, *args, **kwargs) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, **kwargs)
    return info.value.code(), info.value.details()


# ----------------------------------------------------------------------------- every RPC
@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
def test_every_rpc_through_the_client(start, clients, stream):
    factory = Factory()
    server = start(factory)
    local = GradientWorld()
    client = clients(server.address, stream=stream)

    info = client.handshake()
    assert info.name == "gradient" and info.agent_ids == ("agent_0", "agent_1")
    assert (info.height, info.width) == SMALL and info.protocol_version == PROTOCOL_VERSION
    assert CAPABILITY_STEP_STREAM in info.capabilities and info.extra["session_id"] == client.session_id

    remote, expected = (
        client.reset(seed=2, options={"offset": 0.5}),
        local.reset(seed=2, options={"offset": 0.5}),
    )
    for agent in expected:
        assert_same(expected[agent], remote[agent])
    for actions in ({"agent_0": FORWARD}, {"agent_1": Action.from_nav([0.5, 0, 0, 0.3, 0, 0])}, {}):
        remote, expected = client.step(actions), local.step(actions)
        for agent in expected:
            assert_same(expected[agent], remote[agent])

    target = look_at([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    assert_same(local.set_pose("agent_1", target), client.set_pose("agent_1", target))
    assert server.session_count == 1

    client.close()
    client.close()  # idempotent
    assert server.session_count == 0 and factory.made[0].closed
    with pytest.raises(FailedPreconditionError, match="closed"):
        client.step({})


def test_640x480_frames_stream_in_chunks(start, clients):
    server = start(Factory(480, 640))
    client = clients(server.address, stream=True, max_chunk_bytes=64 * 1024)
    assert client.handshake().extra["max_chunk_bytes"] == 64 * 1024
    local = GradientWorld(480, 640)
    client.reset(), local.reset()
    for _ in range(2):
        remote, expected = client.step({"agent_0": FORWARD}), local.step({"agent_0": FORWARD})
        for agent in expected:
            assert_same(expected[agent], remote[agent])

    # The same step on the wire: one message per 64 KiB of plane data, the last one flagged.
    with raw_channel(server) as channel:
        call = channel.stream_stream(f"/{SERVICE_NAME}/StepStream")(
            iter([service_pb.StepRequest(step_id=client._next_step_id).SerializeToString()]),
            metadata=((SESSION_METADATA_KEY, client.session_id),),
        )
        chunks = [service_pb.FrameChunk.FromString(c) for c in call]
    assert len(chunks) == 2 * math.ceil(480 * 640 * 7 / (64 * 1024))
    assert chunks[-1].last_chunk and not any(c.last_chunk for c in chunks[:-1])


@pytest.mark.parametrize("codec", [wire.Codec.PNG, wire.Codec.ZSTD])
def test_compressed_codecs_are_negotiated(start, clients, codec):
    server = start()
    client = clients(server.address, codec=codec)
    assert client.handshake().extra["codec"] == codec.name
    local = GradientWorld()
    remote, expected = client.reset(seed=1), local.reset(seed=1)
    assert_same(expected["agent_0"], remote["agent_0"])


# ----------------------------------------------------------------------------- idempotency
def test_a_retried_step_id_is_answered_without_stepping_again(start, clients):
    factory = Factory()
    server = start(factory)
    client = clients(server.address)
    client.reset()
    step = raw_unary(channel := raw_channel(server), "Step")
    metadata = ((SESSION_METADATA_KEY, client.session_id),)
    request = service_pb.StepRequest(step_id=10, actions=[wire.action_to_proto("agent_0", FORWARD)])
    first = step(request.SerializeToString(), metadata=metadata)
    again = step(request.SerializeToString(), metadata=metadata)
    assert first == again and factory.made[0].steps == 1

    # The retry may also come over the other transport (a client that reconnected with a stream).
    stream = channel.stream_stream(f"/{SERVICE_NAME}/StepStream")
    assembler = wire.FrameSetAssembler()
    results = [assembler.add(c) for c in stream(iter([request.SerializeToString()]), metadata=metadata)]
    streamed, unary = wire.frameset_from_proto(results[-1]), wire.frameset_from_proto(first)
    for agent in unary:
        assert_same(unary[agent], streamed[agent])
    assert factory.made[0].steps == 1

    code, details = rpc_code(step, service_pb.StepRequest(step_id=9).SerializeToString(), metadata=metadata)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "not newer than the last step 10" in details
    channel.close()


class DropFirstStepReply(grpc.ServerInterceptor):
    """Runs the first Step for real, then reports UNAVAILABLE: a reply lost in transit."""

    def __init__(self):
        self.dropped = 0

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        if not details.method.endswith("/Step") or handler is None:
            return handler

        def behaviour(request, context):
            reply = handler.unary_unary(request, context)
            if self.dropped == 0:
                self.dropped += 1
                context.abort(grpc.StatusCode.UNAVAILABLE, "reply lost (test)")
            return reply

        return grpc.unary_unary_rpc_method_handler(behaviour)


def test_client_retries_a_lost_reply_with_the_same_step_id(start, clients):
    factory, dropper = Factory(), DropFirstStepReply()
    server = start(factory, interceptors=[dropper])
    client = clients(server.address)
    local = GradientWorld()
    client.reset(), local.reset()
    remote, expected = client.step({"agent_0": FORWARD}), local.step({"agent_0": FORWARD})
    assert dropper.dropped == 1 and factory.made[0].steps == 1  # retried, answered from the cache
    assert_same(expected["agent_0"], remote["agent_0"])


def test_step_before_reset_is_a_failed_precondition(start, clients):
    client = clients(start().address)
    with pytest.raises(FailedPreconditionError, match="Step before Reset"):
        client.step({})
    with pytest.raises(FailedPreconditionError, match="SetPose before Reset"):
        client.set_pose("agent_0", np.eye(4))


# ----------------------------------------------------------------------------- bad input
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
def test_every_rpc_with_the_real_mujoco_engine(start, clients):
    mujoco_world = pytest.importorskip("bridge.engines.mujoco_world", reason="MuJoCo engine not landed yet")
    server = start(lambda: mujoco_world.MujocoWorld(scene="rooms", height=48, width=64, num_agents=1, seed=0))
    local = mujoco_world.MujocoWorld(scene="rooms", height=48, width=64, num_agents=1, seed=0)
    try:
        for stream in (False, True):
            client = clients(server.address, stream=stream, timeout_s=30.0)
            info = client.handshake()
            assert (info.height, info.width) == (48, 64)
            agent = info.agent_ids[0]
            remote, expected = client.reset(seed=3), local.reset(seed=3)
            assert_same(expected[agent], remote[agent])
            for action in (FORWARD, Action.from_key(5), Action.from_nav([0.3, 0.1, 0, 0, 0.2, 0])):
                remote, expected = client.step({agent: action}), local.step({agent: action})
                np.testing.assert_allclose(remote[agent].pose, expected[agent].pose, atol=1e-9)
                assert remote[agent].frame_id == expected[agent].frame_id
                assert remote[agent].rgb.shape == (48, 64, 3) and np.isfinite(remote[agent].depth).any()
            pose = expected[agent].pose
            np.testing.assert_allclose(client.set_pose(agent, pose).pose, pose, atol=1e-9)
            client.close()
        assert server.session_count == 0
    finally:
        local.close()


def test_many_clients_at_once(start, clients):
    server = start()
    errors: list[BaseException] = []

    def run(seed: int) -> None:
        try:
            with WorldClient(server.address, stream=seed % 2 == 0, timeout_s=10.0) as client:
                local = GradientWorld()
                client.reset(seed=seed), local.reset(seed=seed)
                for _ in range(5):
                    assert_same(
                        local.step({"agent_0": FORWARD})["agent_0"],
                        client.step({"agent_0": FORWARD})["agent_0"],
                    )
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
