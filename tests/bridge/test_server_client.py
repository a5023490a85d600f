"""WorldClient ↔ serve() over real gRPC on 127.0.0.1: every RPC, streaming, idempotency."""

import math
import threading

import grpc
import numpy as np
import pytest

from bridge import wire
from bridge.client import WorldClient
from bridge.conventions import look_at
from bridge.grpc_status import SERVICE_NAME, SESSION_METADATA_KEY
from bridge.proto_gen.genworld.v1 import world_service_pb2 as service_pb
from bridge.types import (
    CAPABILITY_STEP_STREAM,
    PROTOCOL_VERSION,
    Action,
    FailedPreconditionError,
)
from tests.bridge.grpc_helpers import (
    FORWARD,
    SMALL,
    Factory,
    GradientWorld,
    assert_same,
    raw_channel,
    raw_unary,
    rpc_code,
)

pytestmark = pytest.mark.timeout(60)


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
