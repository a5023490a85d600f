"""bridge.wire / framing / reassembly: round trips, chunking, and validation naming fields."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge import wire
from bridge.conventions import intrinsics_from_fov, look_at, pose_from_quat
from bridge.framing import MIN_CHUNK_BYTES, EncodedFrameSet
from bridge.pbwire import len_header, scan_fields, varint
from bridge.proto_gen.genworld.v1 import types_pb2 as pb
from bridge.proto_gen.genworld.v1 import world_service_pb2 as service_pb
from bridge.reassembly import IN_PLACE_MIN_BYTES
from bridge.types import Action, InvalidArgumentError, Observation

H, W = 480, 640
finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
unit = st.floats(-1.0, 1.0, allow_nan=False)


def _observation(height=24, width=32, seed=0, hands=False, collided=False) -> Observation:
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.1, 10.0, (height, width)).astype(np.float32)
    depth[0, 0] = np.inf  # "no hit" must survive the trip
    return Observation(
        rgb=rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
        depth=depth,
        pose=look_at([1.0, -2.0, 1.5], [3.0, 1.0, 1.0]),
        K=intrinsics_from_fov(width, height, 70.0),
        frame_id=seed + 3,
        sim_time=0.25 * seed,
        hand_keypoints=rng.normal(size=(2, 21, 3)).astype(np.float32) if hands else None,
        collided=collided,
    )


def _assert_same(a: Observation, b: Observation) -> None:
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.depth, b.depth)
    np.testing.assert_allclose(a.pose, b.pose, atol=1e-12)
    np.testing.assert_allclose(a.K, b.K)
    assert (a.frame_id, a.sim_time, a.collided) == (b.frame_id, b.sim_time, b.collided)
    if a.hand_keypoints is None:
        assert b.hand_keypoints is None
    else:
        np.testing.assert_array_equal(a.hand_keypoints, b.hand_keypoints)
    assert b.rgb.dtype == np.uint8 and b.depth.dtype == np.float32


# ----------------------------------------------------------------------------- round trips
@settings(max_examples=60, deadline=None)
@given(
    st.tuples(unit, unit, unit, unit).filter(lambda q: np.linalg.norm(q) > 1e-3),
    st.tuples(finite, finite, finite),
)
def test_pose_round_trip(q, t):
    pose = pose_from_quat(t, np.asarray(q) / np.linalg.norm(q))
    msg = wire.pose_to_proto(pose)
    assert msg.qw >= -1e-12  # named fields, canonical sign (w >= 0 up to rounding)
    np.testing.assert_allclose(wire.pose_from_proto(msg), pose, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(
        st.integers(0, 8).map(Action.from_key),
        st.lists(unit, min_size=6, max_size=6).map(Action.from_nav),
        st.tuples(
            st.lists(unit, min_size=6, max_size=6),
            st.floats(0.0, 1.0),
            st.lists(unit, min_size=6, max_size=6),
            st.floats(0.0, 1.0),
        ).map(lambda p: Action.from_hand([*p[0], p[1], *p[2], p[3]])),
    ),
    st.text(min_size=1, max_size=8),
)
def test_action_round_trip(action, agent_id):
    msg = service_pb.StepRequest.FromString(
        service_pb.StepRequest(
            step_id=1, actions=[wire.action_to_proto(agent_id, action)]
        ).SerializeToString()
    )
    back = wire.actions_from_proto(msg.actions, [agent_id])[agent_id]
    assert back.kind == action.kind
    for name in ("key", "nav_vector", "hand_vector"):
        np.testing.assert_array_equal(getattr(back, name), getattr(action, name))


@pytest.mark.parametrize("codec", list(wire.Codec))
def test_frameset_round_trip_every_codec(codec):
    observations = {"a": _observation(seed=1, hands=True, collided=True), "b": _observation(seed=2)}
    encoded = wire.encode_frameset(7, observations, codec)
    blob = encoded.to_bytes()
    as_proto = service_pb.FrameSet.FromString(blob)  # hand-assembled bytes parse as usual
    assert as_proto.step_id == 7 and [f.agent_id for f in as_proto.frames] == ["a", "b"]
    assert as_proto.frames[0].rgb.codec == wire.plane_codec(codec, pb.PIXEL_FORMAT_RGB8)
    for decoded in (wire.frameset_from_proto(blob), wire.frameset_from_proto(as_proto)):
        for agent in observations:
            _assert_same(observations[agent], decoded[agent])


def test_large_raw_planes_are_zero_copy_views_of_the_message():
    blob = wire.encode_frameset(1, {"a": _observation(H, W)}).to_bytes()
    assert len(blob) >= IN_PLACE_MIN_BYTES
    obs = wire.frameset_from_proto(blob)["a"]
    assert not obs.rgb.flags.writeable and np.shares_memory(obs.rgb, np.frombuffer(blob, np.uint8))


def test_read_frameset_accepts_protobufs_own_serialisation():
    frameset = wire.frameset_to_proto(3, {"a": _observation(hands=True)})
    read = wire.read_frameset(frameset.SerializeToString())  # upb's field order, not ours
    assert read.step_id == 3 and bytes(read.frames[0].rgb) == frameset.frames[0].rgb.data
    assert read.to_proto() == frameset


# ----------------------------------------------------------------------------- chunking
@pytest.mark.parametrize("chunk_bytes", [MIN_CHUNK_BYTES, 4096 + 7, 64 * 1024, 4 << 20])
def test_chunking_640x480_round_trip(chunk_bytes):
    observations = {"a": _observation(H, W, seed=1), "b": _observation(H, W, seed=2, hands=True)}
    encoded = wire.encode_frameset(11, observations)
    chunks = encoded.chunks(chunk_bytes)
    per_frame = H * W * (3 + 4)
    assert len(chunks) == 2 * math.ceil(per_frame / chunk_bytes)
    messages = [service_pb.FrameChunk.FromString(c) for c in chunks]
    assert all(len(m.frame.rgb.data) + len(m.frame.depth.data) <= chunk_bytes for m in messages)
    assert [m.last_chunk for m in messages] == [False] * (len(messages) - 1) + [True]
    for source in (chunks, messages):  # raw bytes (fast path) and parsed messages
        assembler = wire.FrameSetAssembler()
        results = [assembler.add(c) for c in source]
        assert all(r is None for r in results[:-1])
        decoded = wire.frameset_from_proto(results[-1])
        for agent in observations:
            _assert_same(observations[agent], decoded[agent])


def test_default_chunk_carries_a_640x480_frame_whole_and_it_is_read_in_place():
    from bridge.server import DEFAULT_MAX_CHUNK_BYTES, GRPC_DEFAULT_MAX_MESSAGE_BYTES

    (chunk,) = wire.encode_frameset(2, {"a": _observation(H, W, seed=4)}).chunks(DEFAULT_MAX_CHUNK_BYTES)
    assert len(chunk) <= GRPC_DEFAULT_MAX_MESSAGE_BYTES  # any gRPC client accepts it by default
    frame = wire.FrameSetAssembler().add(chunk).frames[0]
    for plane in (frame.rgb, frame.depth):  # views of the received message, not joined copies
        assert isinstance(plane, memoryview) and plane.obj is chunk


def test_split_frameset_reassembles_to_the_same_message():
    frameset = wire.frameset_to_proto(5, {"a": _observation(H, W)})
    assembler = wire.FrameSetAssembler()
    results = [assembler.add(c) for c in wire.split_frameset(frameset, 100_000)]
    assert results[-1].to_proto() == frameset


def test_assembler_serves_consecutive_framesets_and_empty_ones():
    assembler = wire.FrameSetAssembler()
    for step_id in (1, 2):
        chunks = wire.encode_frameset(step_id, {"a": _observation(seed=step_id)}).chunks(MIN_CHUNK_BYTES)
        result = [assembler.add(c) for c in chunks][-1]
        assert result.step_id == step_id
    (empty,) = EncodedFrameSet(9, ()).chunks(MIN_CHUNK_BYTES)
    assert assembler.add(empty).frames == ()


def _chunk_messages(chunk_bytes=MIN_CHUNK_BYTES):
    chunks = wire.encode_frameset(4, {"a": _observation(), "b": _observation(seed=1)}).chunks(chunk_bytes)
    return [service_pb.FrameChunk.FromString(c) for c in chunks]


def _feed(chunks, **kwargs):
    assembler = wire.FrameSetAssembler(**kwargs)
    for chunk in chunks:
        assembler.add(chunk)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c[:1] + c[2:], "order"),  # a chunk lost
        (lambda c: [c[1], c[0], *c[2:]], "frame 0 chunk 0"),  # reordered
        (lambda c: [*c[:2], _with(c[2], step_id=99), *c[3:]], "step_id changed"),
        (lambda c: [*c[:2], _with(c[2], frame_count=5), *c[3:]], "frame_count changed"),
        (lambda c: [*c[:-2], _with(c[-2], last_chunk=True)], "last_chunk"),
        (lambda c: [_with(x, frame_count=1) for x in c], "frame_index 1 >= frame_count 1"),
    ],
)
def test_assembler_refuses_broken_streams(mutate, message):
    with pytest.raises(InvalidArgumentError, match=message):
        _feed(mutate(_chunk_messages()))


def _with(chunk, **fields):
    copy = service_pb.FrameChunk()
    copy.CopyFrom(chunk)
    for name, value in fields.items():
        setattr(copy, name, value)
    return copy


def test_assembler_refuses_overflow_and_oversize_announcements():
    chunks = _chunk_messages()
    grown = _with(chunks[2])  # carries the end of rgb (24x32x3 bytes in 1 KiB chunks)
    grown.frame.rgb.data += b"extra"
    with pytest.raises(InvalidArgumentError, match=r"rgb\.data overflows total_bytes"):
        _feed([chunks[0], chunks[1], grown])
    with pytest.raises(InvalidArgumentError, match="over the 100-byte limit"):
        _feed(chunks, max_frame_bytes=100)


def test_chunk_size_has_a_floor():
    with pytest.raises(ValueError, match="max_chunk_bytes"):
        wire.encode_frameset(1, {"a": _observation()}).chunks(MIN_CHUNK_BYTES - 1)


# ----------------------------------------------------------------------------- validation
def _frame(**image_changes) -> pb.Frame:
    frame = wire.frame_to_proto("a", _observation())
    for path, value in image_changes.items():
        plane, name = path.split("__")
        setattr(getattr(frame, plane), name, value)
    return frame


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        (_frame(rgb__codec=42), "frame.rgb.codec"),
        (_frame(depth__codec=pb.CODEC_PNG), "frame.depth.codec"),
        (_frame(rgb__data=b"\x00" * 10, rgb__total_bytes=10), "frame.rgb.data has 10 bytes, expected 2304"),
        (_frame(depth__data=b"\x00" * 12, depth__total_bytes=12), "frame.depth.data"),
        (_frame(rgb__total_bytes=5), "frame.rgb.total_bytes"),
        (_frame(depth__format=pb.PIXEL_FORMAT_RGB8), "frame.depth.format"),
        (_frame(rgb__width=31), "frame: rgb is 31x24"),
        (_frame(depth__codec=pb.CODEC_ZSTD), "frame.depth.data is not valid zstd"),
    ],
)
def test_frame_validation_names_the_field(frame, field):
    with pytest.raises(InvalidArgumentError, match=field.replace(".", r"\.")):
        wire.frame_from_proto(frame)


def test_png_with_the_wrong_size_is_refused():
    frame = wire.frame_to_proto("a", _observation(), wire.Codec.PNG)
    frame.rgb.height, frame.rgb.width = frame.rgb.width, frame.rgb.height
    frame.depth.height, frame.depth.width = frame.rgb.height, frame.rgb.width
    with pytest.raises(InvalidArgumentError, match=r"frame\.rgb\.data: PNG is RGB 32x24"):
        wire.frame_from_proto(frame)


@pytest.mark.parametrize(
    ("pose", "field"),
    [
        (pb.Pose(x=math.nan, qw=1.0), r"pose\.x is nan"),
        (pb.Pose(qw=math.inf), r"pose\.qw is inf"),
        (pb.Pose(qw=0.5), "unit quaternion"),
        (pb.Pose(), "norm 0"),
    ],
)
def test_bad_poses_name_the_field(pose, field):
    with pytest.raises(InvalidArgumentError, match=field):
        wire.pose_from_proto(pose, "pose")


def test_slightly_denormalised_quaternions_are_accepted():
    T = wire.pose_from_proto(pb.Pose(qw=1.0 + 1e-5))
    np.testing.assert_allclose(T, np.eye(4), atol=1e-9)


@pytest.mark.parametrize(
    ("action", "field"),
    [
        (pb.Action(agent_id="a", key=42), r"actions\[0\]\.key"),
        (pb.Action(agent_id="a", nav=pb.ContinuousNav(values=[0.0] * 5)), r"actions\[0\]\.nav.*shape \(6,\)"),
        (pb.Action(agent_id="a", nav=pb.ContinuousNav(values=[math.nan] * 6)), r"actions\[0\]\.nav.*finite"),
        (
            pb.Action(agent_id="a", nav=pb.ContinuousNav(values=[2.0] * 6)),
            r"actions\[0\]\.nav.*\[-1\.0, 1\.0\]",
        ),
        (
            pb.Action(agent_id="a", hand=pb.HandAction(values=[0.0] * 13)),
            r"actions\[0\]\.hand.*shape \(14,\)",
        ),
        (pb.Action(agent_id="a", hand=pb.HandAction(values=[0.0] * 6 + [-0.5] + [0.0] * 7)), "grip"),
        (pb.Action(agent_id="a"), r"actions\[0\] sets no action"),
        (pb.Action(agent_id="ghost", key=1), r"actions\[0\]\.agent_id: unknown agent 'ghost'"),
    ],
)
def test_bad_actions_name_the_field(action, field):
    with pytest.raises(InvalidArgumentError, match=field):
        wire.actions_from_proto([action], ["a"], "StepRequest.actions")


def test_repeated_agent_is_refused():
    actions = [pb.Action(agent_id="a", key=1), pb.Action(agent_id="a", key=2)]
    with pytest.raises(
        InvalidArgumentError, match=r"actions\[1\]\.agent_id: agent 'a' already has an action"
    ):
        wire.actions_from_proto(actions, ["a"])


@pytest.mark.parametrize(
    ("intrinsics", "field"),
    [
        (pb.Intrinsics(fx=0.0, fy=1.0), r"intrinsics\.fx and \.fy"),
        (pb.Intrinsics(fx=1, fy=1, cx=math.nan), "cx"),
    ],
)
def test_bad_intrinsics_name_the_field(intrinsics, field):
    with pytest.raises(InvalidArgumentError, match=field):
        wire.intrinsics_from_proto(intrinsics)


def test_options_and_versions():
    assert wire.options_from_json(wire.options_to_json({"scene": "rooms", "n": 2})) == {
        "scene": "rooms",
        "n": 2,
    }
    assert wire.options_from_json("") == {}
    with pytest.raises(InvalidArgumentError, match="options_json must be a JSON object"):
        wire.options_from_json("[1, 2]")
    with pytest.raises(InvalidArgumentError, match="options_json is not valid JSON"):
        wire.options_from_json("{")
    with pytest.raises(InvalidArgumentError, match="JSON-serialisable"):
        wire.options_to_json({"x": object()})
    assert wire.parse_semver("1.2.3") == (1, 2, 3)
    with pytest.raises(InvalidArgumentError, match="protocol_version"):
        wire.parse_semver("1.2")


def test_bad_observations_from_an_engine_are_refused():
    obs = _observation()
    for bad, field in [
        (Observation(obs.rgb[..., :2], obs.depth, obs.pose, obs.K, 0, 0.0), "rgb"),
        (Observation(obs.rgb, obs.depth.astype(np.float64), obs.pose, obs.K, 0, 0.0), "depth"),
        (Observation(obs.rgb, obs.depth, np.full((4, 4), np.nan), obs.K, 0, 0.0), "pose"),
    ]:
        with pytest.raises(InvalidArgumentError, match=rf"Observation\['a'\]\.{field}"):
            wire.encode_frame("a", bad)


# ----------------------------------------------------------------------------- wire format
@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**64 - 1))
def test_varint_matches_protobuf(value):
    assert varint(value) == service_pb.FrameSet(step_id=value).SerializeToString()[1:] or value == 0


@pytest.mark.parametrize("padding", [0, IN_PLACE_MIN_BYTES], ids=["protobuf-parser", "in-place-scanner"])
def test_malformed_messages_are_invalid_arguments(padding):
    for garbage in (b"\xff\xff\xff\xff", b"\x12\x7f", b"\x0f", len_header(2, 10) + b"abc"):
        with pytest.raises(InvalidArgumentError, match=r"malformed protobuf|not a valid FrameSet"):
            wire.read_frameset(garbage + b"\x00" * padding)
        with pytest.raises(InvalidArgumentError, match=r"malformed protobuf|not a valid FrameChunk"):
            wire.read_chunk(garbage + b"\x00" * padding)
    assert list(scan_fields(memoryview(b""), 0, 0)) == []
