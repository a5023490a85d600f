"""bridge.frame_meta: our hand-written layout is plain protobuf, and its fast reader agrees
with the generic path (or steps aside) for every input."""

import threading

import numpy as np
import pytest

from bridge import wire
from bridge.client_stream import Watchdog
from bridge.frame_meta import read_chunk_layout, read_frameset_layout, write_frame_meta
from bridge.pbwire import varint
from bridge.proto_gen.genworld.v1 import types_pb2 as pb
from bridge.proto_gen.genworld.v1 import world_service_pb2 as service_pb
from bridge.reassembly import FrameSetAssembler, read_frameset
from bridge.types import Action, InvalidArgumentError
from tests.bridge.test_wire import _assert_same, _observation

DEFAULT_CHUNK = 4 * (1 << 20) - 64 * 1024
WATCHDOG_WAIT_S = 10.0


def _generic(blob: bytes) -> dict:
    return wire.frameset_from_proto(read_frameset(blob))


@pytest.mark.parametrize("hands", [False, True])
@pytest.mark.parametrize("collided", [False, True])
def test_written_meta_is_the_frame_protobuf_would_write(hands, collided):
    keypoints = np.arange(2 * 21 * 3, dtype="<f4").tobytes() if hands else None
    raw = write_frame_meta(
        "agent_0",
        0,
        1.5,
        (0.0, -1.0, 2.0, 1.0, 0.0, 0.0, 0.0),
        (50.0, 51.0, 31.5, 23.5),
        64,
        48,
        collided,
        keypoints,
    )
    expected = pb.Frame(
        agent_id="agent_0",
        frame_id=0,
        sim_time=1.5,
        pose=pb.Pose(x=0.0, y=-1.0, z=2.0, qw=1.0),
        intrinsics=pb.Intrinsics(fx=50.0, fy=51.0, cx=31.5, cy=23.5, width=64, height=48),
        collided=collided,
    )
    if hands:
        expected.hand_keypoints.xyz_f32 = keypoints
    assert pb.Frame.FromString(raw) == expected


@pytest.mark.parametrize(("height", "width"), [(24, 32), (480, 640)])
@pytest.mark.parametrize("hands", [False, True])
def test_fast_reader_agrees_with_the_generic_path(height, width, hands):
    observations = {
        "a": _observation(height, width, seed=1, hands=hands, collided=True),
        "b": _observation(height, width, seed=2, hands=hands),
    }
    blob = wire.encode_frameset(41, observations).to_bytes()
    flat = read_frameset_layout(blob)
    assert flat is not None and flat.step_id == 41
    fast, generic = wire.frameset_from_proto(flat), _generic(blob)
    assert list(fast) == list(generic) == ["a", "b"]
    for agent_id in observations:
        _assert_same(observations[agent_id], fast[agent_id])
        _assert_same(generic[agent_id], fast[agent_id])


def test_whole_chunk_is_read_fast_and_split_ones_go_to_the_assembler():
    obs = {"a": _observation(48, 64, seed=3, hands=True)}
    encoded = wire.encode_frameset(7, obs)
    (whole,) = encoded.chunks(DEFAULT_CHUNK)
    flat = read_chunk_layout(whole)
    assert flat is not None and flat.step_id == 7
    _assert_same(obs["a"], wire.frameset_from_proto(flat)["a"])
    split = encoded.chunks(4096)
    assert len(split) > 1 and all(read_chunk_layout(c) is None for c in split)
    two_agents = wire.encode_frameset(8, {"a": obs["a"], "b": obs["a"]}).chunks(DEFAULT_CHUNK)
    assert all(read_chunk_layout(c) is None for c in two_agents)  # frame_count 2: the assembler's job
    assembler = FrameSetAssembler()
    assert [assembler.add(c) is not None for c in split][-1]


def test_other_layouts_fall_back_to_protobuf():
    obs = _observation(24, 32, seed=4)
    # Protobuf omits zero fields: frame_id 0 and a pose at the origin leave our layout.
    message = wire.frameset_to_proto(5, {"a": obs})
    message.frames[0].frame_id = 0
    message.frames[0].pose.x = 0.0
    blob = message.SerializeToString()
    assert read_frameset_layout(blob) is None
    assert _generic(blob)["a"].frame_id == 0
    chunk = service_pb.FrameChunk(step_id=5, last_chunk=True, frame_count=1, frame=message.frames[0])
    assert read_chunk_layout(chunk.SerializeToString()) is None
    assert read_frameset_layout(memoryview(blob)) is None  # only bytes are read in place


@pytest.mark.parametrize("cut", [1, 7, 40, 120, -1])
def test_truncated_or_garbage_bytes_never_pass_the_fast_reader(cut):
    blob = wire.encode_frameset(3, {"a": _observation(24, 32)}).to_bytes()
    assert read_frameset_layout(blob[:cut]) is None
    assert read_frameset_layout(b"\x12\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff") is None
    with pytest.raises(InvalidArgumentError):
        _generic(blob[:cut])


@pytest.mark.parametrize(
    ("pose7", "message"),
    [
        ((float("nan"), 0.0, 0.0, 1.0, 0.0, 0.0, 0.0), r"FrameSet\.frames\[0\]\.pose\.x is nan"),
        ((0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0), r"FrameSet\.frames\[0\]\.pose \(qw, qx, qy, qz\) has norm 3"),
    ],
)
def test_bad_values_in_our_layout_are_refused_naming_the_field(pose7, message):
    # Write the bad pose straight into our layout (our server would never send it).
    header = write_frame_meta("a", 1, 0.0, pose7, (10.0, 10.0, 16.0, 12.0), 32, 24, False, None)
    frame = wire.encode_frame("a", _observation(24, 32))
    blob = wire.EncodedFrameSet(1, (frame._replace(header=header),)).to_bytes()
    flat = read_frameset_layout(blob)
    assert flat is not None
    with pytest.raises(InvalidArgumentError, match=message):
        wire.frameset_from_proto(flat)


def test_step_request_is_what_protobuf_would_write():
    actions = {"a": Action.from_key(0), "b": Action.from_key(3), "c": Action.from_nav([0.5, 0, 0, -1, 0, 0])}
    raw = wire.step_request(9, wire.encode_step_actions(actions))
    expected = service_pb.StepRequest(
        step_id=9, actions=[wire.action_to_proto(agent_id, a) for agent_id, a in actions.items()]
    )
    assert service_pb.StepRequest.FromString(raw) == expected
    parsed = wire.actions_from_proto(service_pb.StepRequest.FromString(raw).actions, ("a", "b", "c"))
    assert parsed["a"].key == 0 and parsed["b"].key == 3 and parsed["c"].kind == "nav"
    with pytest.raises(InvalidArgumentError, match=r"actions\['a'\] must be an Action"):
        wire.encode_step_actions({"a": 3})


def test_bad_engine_metadata_is_refused_before_the_wire():
    obs = _observation(24, 32)
    with pytest.raises(InvalidArgumentError, match="frame_id"):
        wire.encode_frame("a", type(obs)(obs.rgb, obs.depth, obs.pose, obs.K, frame_id=-1, sim_time=0.0))
    with pytest.raises(InvalidArgumentError, match="sim_time"):
        wire.encode_frame("a", type(obs)(obs.rgb, obs.depth, obs.pose, obs.K, frame_id=1, sim_time="x"))


def test_watchdog_fires_when_armed_and_not_when_disarmed():
    watchdog = Watchdog()
    try:
        fired = threading.Event()
        watchdog.arm(3600.0, fired.set)  # a far deadline first: an earlier one must wake the thread
        watchdog.arm(0.01, fired.set)
        assert fired.wait(WATCHDOG_WAIT_S)
        silent = threading.Event()
        watchdog.arm(0.05, silent.set)
        watchdog.disarm()
        second = threading.Event()
        watchdog.arm(0.1, second.set)  # a later callback fires, the disarmed one never did
        assert second.wait(WATCHDOG_WAIT_S)
        assert not silent.is_set()
    finally:
        watchdog.close()


@pytest.mark.parametrize("key", [0, 4, 8, 127, 200])
@pytest.mark.parametrize("step_id", [1, 300, 2**40])
def test_key_step_requests_are_read_as_protobuf_reads_them(step_id, key):
    request = service_pb.StepRequest(step_id=step_id, actions=[pb.Action(agent_id="agent_0", key=key)])
    raw = request.SerializeToString()
    expected = (step_id, "agent_0", key) if key < 128 else None  # a two-byte key: protobuf's job
    assert wire.read_key_step_request(raw) == expected
    ours = wire.step_request(step_id, raw[raw.index(b"\x12") :])
    assert ours == raw and service_pb.StepRequest.FromString(ours) == request


@pytest.mark.parametrize(
    "request_",
    [
        service_pb.StepRequest(step_id=1),  # no action
        service_pb.StepRequest(step_id=1, actions=[pb.Action(agent_id="a", key=1)] * 2),
        service_pb.StepRequest(
            step_id=1, actions=[pb.Action(agent_id="a", nav=pb.ContinuousNav(values=[0] * 6))]
        ),
        service_pb.StepRequest(step_id=1, actions=[pb.Action(key=1)]),  # no agent_id
        service_pb.StepRequest(actions=[pb.Action(agent_id="a", key=1)]),  # step_id 0 is omitted
    ],
)
def test_other_step_requests_go_through_protobuf(request_):
    raw = request_.SerializeToString()
    assert wire.read_key_step_request(raw) is None
    assert wire.read_key_step_request(raw[:-1]) is None
    assert wire.read_key_step_request(b"\x08\x01\x12\x05\x0a\x03\xff\xfe\xfd\x10\x01") is None  # bad UTF-8


def test_an_agent_id_that_is_not_utf8_is_refused_as_protobuf_refuses_it():
    frame = wire.encode_frame("ab", _observation(24, 32))
    header = frame.header.replace(b"\x0a\x02ab", b"\x0a\x02\xff\xfe", 1)
    blob = wire.EncodedFrameSet(1, (frame._replace(header=header),)).to_bytes()
    assert read_frameset_layout(blob) is None
    with pytest.raises(InvalidArgumentError, match="not a valid"):
        _generic(blob)


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**14 - 1, 2**14, 2**21 - 1, 2**21, 2**35, 2**64 - 1])
def test_varint_boundaries_match_protobuf(value):
    assert varint(value) == service_pb.FrameSet(step_id=value).SerializeToString()[1:] or value == 0
    with pytest.raises(ValueError, match=">= 0"):
        varint(-value - 1)


def test_the_common_case_encoder_writes_what_the_general_path_writes():
    obs = _observation(24, 32, seed=5, collided=True)
    general = type(obs)(
        np.asfortranarray(obs.rgb),  # not C-contiguous, and plain lists: the general path
        obs.depth,
        obs.pose.tolist(),
        obs.K.tolist(),
        frame_id=obs.frame_id,
        sim_time=obs.sim_time,
        collided=True,
    )
    assert wire._encode_raw_frame("a", general) is None
    fast = wire._encode_raw_frame("a", obs)
    assert fast is not None
    assert wire.EncodedFrameSet(2, (fast,)).to_bytes() == wire.encode_frameset(2, {"a": general}).to_bytes()
    bad = type(obs)(obs.rgb, obs.depth, obs.pose, obs.K * np.nan, frame_id=1, sim_time=0.0)
    assert wire._encode_raw_frame("a", bad) is None
    with pytest.raises(InvalidArgumentError, match=r"Observation\['a'\]\.K must be a finite 3x3"):
        wire.encode_frame("a", bad)


def test_the_common_case_decoder_reads_what_the_general_path_reads():
    obs = _observation(24, 32, seed=6, collided=True)
    flat = read_frameset_layout(wire.encode_frameset(3, {"a": obs}).to_bytes())
    assert flat is not None
    fast = wire._decode_raw_flat_frame(flat.frames[0])
    assert fast is not None
    f = flat.frames[0]
    general = wire._observation_of(
        f, f.rgb, f.depth, f.pose, f.intrinsics, f.hand_keypoints, f.rgb_data, f.depth_data, "frame"
    )
    _assert_same(general, fast)
    np.testing.assert_array_equal(general.pose, fast.pose)
    hands = read_frameset_layout(wire.encode_frameset(3, {"a": _observation(24, 32, hands=True)}).to_bytes())
    assert wire._decode_raw_flat_frame(hands.frames[0]) is None  # hands: the general path
