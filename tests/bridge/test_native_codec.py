"""bridge.wire_native: the C frame codec writes the Python path's bytes, reads its values,
steps aside for everything else and survives any input."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge import wire, wire_native
from bridge._native import PURE_PYTHON_ENV
from bridge.conventions import intrinsics_from_fov, pose_from_quat
from bridge.frame_meta import read_chunk_layout, read_frameset_layout, write_frame_meta
from bridge.framing import EncodedFrame, EncodedFrameSet, EncodedPlane
from bridge.proto_gen.genworld.v1 import types_pb2 as pb
from bridge.types import InvalidArgumentError, Observation
from tests.bridge.test_wire import _observation

CHUNK = 1 << 20
FUZZ_MUTATIONS = 3000


@pytest.fixture
def native(monkeypatch):
    """The C codec installed in bridge.wire_native, whatever GENWORLD_PURE_PYTHON says."""
    try:
        from bridge._native import _framecodec
    except ImportError:
        pytest.skip("the C extension is not built (pip install -e . with a C compiler)")
    monkeypatch.setattr(wire_native, "_framecodec", wire_native.configure_codec(_framecodec))
    return _framecodec


def _python_bytes(step_id: int, observations: dict, max_chunk_bytes: int) -> bytes:
    encoded = wire.encode_frameset(step_id, observations)
    return encoded.chunks(max_chunk_bytes)[0] if max_chunk_bytes else encoded.to_bytes()


def _python_read(message: bytes, chunk: bool) -> tuple[int, dict[str, Observation]] | None:
    flat = read_chunk_layout(message) if chunk else read_frameset_layout(message)
    if flat is None or len(flat.frames) != 1:
        return None
    return flat.step_id, wire.frameset_from_proto(flat)


def _assert_identical(a: Observation, b: Observation) -> None:
    """Same arrays bit for bit (pose and K included) and the same scalars and types."""
    for name in ("rgb", "depth", "pose", "K"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert x.tobytes() == y.tobytes(), name
    assert a.pose.flags.writeable and a.K.flags.writeable and a.pose.flags.aligned  # as np.array makes them
    assert (a.frame_id, a.sim_time, a.collided, a.hand_keypoints) == (
        b.frame_id,
        b.sim_time,
        b.collided,
        b.hand_keypoints,
    )
    assert type(a.collided) is type(b.collided) and type(a.sim_time) is type(b.sim_time)
    assert not a.rgb.flags.writeable and not a.depth.flags.writeable  # views of the message, as in Python


quaternions = st.tuples(*[st.floats(-1.0, 1.0)] * 4).filter(lambda q: math.hypot(*q) > 1e-3)
translations = st.tuples(*[st.floats(-1e6, 1e6)] * 3)


@st.composite
def frames(draw):
    height, width = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    q = np.asarray(draw(quaternions))
    K = intrinsics_from_fov(width, height, draw(st.floats(10.0, 150.0)))
    K[0, 0] *= draw(st.floats(0.5, 2.0))
    depth = rng.uniform(0.0, 50.0, (height, width)).astype(np.float32)
    if draw(st.booleans()):
        depth[0, 0] = np.inf  # "no hit"
    observation = Observation(
        rgb=rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
        depth=depth,
        pose=pose_from_quat(draw(translations), q / np.linalg.norm(q)),
        K=K,
        frame_id=draw(st.integers(0, 2**64 - 1)),
        sim_time=draw(st.one_of(st.floats(-1e9, 1e9), st.integers(-(2**40), 2**40))),
        collided=draw(st.booleans()),
    )
    agent_id = draw(st.text(min_size=0, max_size=20))
    return draw(st.integers(0, 2**63)), agent_id, observation


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames(), st.booleans())
def test_encode_writes_the_python_bytes_and_decode_reads_the_python_values(native, frame, chunked):
    step_id, agent_id, observation = frame
    max_chunk = CHUNK if chunked else 0
    blob = wire_native.encode_single_frame(step_id, {agent_id: observation}, wire.Codec.RAW, max_chunk)
    assert blob is not None
    assert blob == _python_bytes(step_id, {agent_id: observation}, max_chunk)
    decoded = wire_native.decode_single_frame(blob, chunked)
    assert decoded is not None
    reference_step, reference = _python_read(blob, chunked)
    assert decoded.step_id == reference_step == step_id
    assert list(decoded.observations) == list(reference) == [agent_id]
    _assert_identical(decoded.observations[agent_id], reference[agent_id])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=16, max_size=16))
def test_encode_of_any_pose_matrix_is_the_python_bytes_or_steps_aside(native, values):
    observation = _observation(4, 5)
    observation = Observation(**{**observation.__dict__, "pose": np.array(values).reshape(4, 4)})
    blob = wire_native.encode_single_frame(3, {"a": observation}, wire.Codec.RAW, 0)
    try:
        reference = _python_bytes(3, {"a": observation}, 0)
    except (ValueError, ZeroDivisionError, OverflowError, InvalidArgumentError):
        assert blob is None  # the Python path raises: the C codec must have handed over
        return
    assert blob is None or blob == reference


def _variant(observation: Observation, **changes) -> Observation:
    return Observation(**{**observation.__dict__, **changes})


@pytest.mark.parametrize(
    "case",
    [
        "two agents",
        "hands",
        "png codec",
        "non-contiguous rgb",
        "big-endian depth",
        "float32 pose",
        "list K",
        "skewed K",
        "negative frame_id",
        "numpy frame_id",
        "bool sim_time",
        "empty image",
        "split into chunks",
        "chunk limit below the minimum",
        "surrogate agent_id",
    ],
)
def test_encode_steps_aside_outside_the_common_case(native, case):
    obs = _observation(8, 6)
    observations, codec, max_chunk = {"a": obs}, wire.Codec.RAW, CHUNK
    if case == "two agents":
        observations = {"a": obs, "b": obs}
    elif case == "hands":
        observations = {"a": _observation(8, 6, hands=True)}
    elif case == "png codec":
        codec = wire.Codec.PNG
    elif case == "non-contiguous rgb":
        observations = {"a": _variant(obs, rgb=np.asfortranarray(obs.rgb))}
    elif case == "big-endian depth":
        observations = {"a": _variant(obs, depth=obs.depth.astype(">f4"))}
    elif case == "float32 pose":
        observations = {"a": _variant(obs, pose=obs.pose.astype(np.float32))}
    elif case == "list K":
        observations = {"a": _variant(obs, K=obs.K.tolist())}
    elif case == "skewed K":
        observations = {"a": _variant(obs, K=obs.K + np.array([[0, 1e-3, 0], [0, 0, 0], [0, 0, 0]]))}
    elif case == "negative frame_id":
        observations = {"a": _variant(obs, frame_id=-1)}
    elif case == "numpy frame_id":
        observations = {"a": _variant(obs, frame_id=np.int64(3))}
    elif case == "bool sim_time":
        observations = {"a": _variant(obs, sim_time=True)}
    elif case == "empty image":
        observations = {"a": _variant(obs, rgb=obs.rgb[:0], depth=obs.depth[:0])}
    elif case == "split into chunks":
        max_chunk = 1024  # 8x6 RGB-D is 336 bytes: make it bigger than one chunk
        observations = {"a": _observation(32, 32)}
    elif case == "chunk limit below the minimum":
        max_chunk = 100
    elif case == "surrogate agent_id":
        observations = {"\ud800": obs}
    assert wire_native.encode_single_frame(1, observations, codec, max_chunk) is None


def test_decode_steps_aside_for_several_frames_and_hands(native):
    two = wire.encode_frameset(4, {"a": _observation(), "b": _observation(seed=1)}).to_bytes()
    assert wire_native.decode_single_frame(two, False) is None
    hands = wire.encode_frameset(4, {"a": _observation(hands=True)}).to_bytes()
    assert wire_native.decode_single_frame(hands, False) is None
    assert wire_native.decode_single_frame(bytearray(two), False) is None  # bytes only
    assert wire_native.decode_single_frame(b"", True) is None


def _mutations(blob: bytes, rng: np.random.Generator):
    """Truncations, flipped and overwritten bytes, insertions, deletions and garbage."""
    for _ in range(FUZZ_MUTATIONS):
        data = bytearray(blob)
        kind = rng.integers(6)
        if kind == 0:
            data = data[: rng.integers(len(data))]
        elif kind == 1:
            for _ in range(rng.integers(1, 4)):
                data[rng.integers(len(data))] ^= 1 << rng.integers(8)
        elif kind == 2:
            data[rng.integers(len(data))] = rng.integers(256)
        elif kind == 3:
            at = rng.integers(len(data))
            data[at:at] = rng.integers(0, 256, rng.integers(1, 4), dtype=np.uint8).tobytes()
        elif kind == 4:
            at = rng.integers(len(data))
            del data[at : at + rng.integers(1, 4)]
        else:
            data = bytearray(rng.integers(0, 256, rng.integers(0, 200), dtype=np.uint8).tobytes())
        yield bytes(data)


@pytest.mark.parametrize("chunked", [False, True])
def test_decode_of_mutated_messages_is_none_or_the_python_values(native, chunked):
    """The header region is where layout checks live: mutate a frame with a small payload."""
    blob = _python_bytes(9, {"cam": _observation(3, 2, collided=True)}, CHUNK if chunked else 0)
    rng = np.random.default_rng(1234)
    accepted = 0
    for message in _mutations(blob, rng):
        decoded = wire_native.decode_single_frame(message, chunked)
        if decoded is None:
            continue
        accepted += 1
        reference = _python_read(message, chunked)
        assert reference is not None, message  # C accepts only what the Python fast path accepts
        assert decoded.step_id == reference[0]
        assert list(decoded.observations) == list(reference[1])
        (agent_id,) = decoded.observations
        _assert_identical(decoded.observations[agent_id], reference[1][agent_id])
    assert accepted > 0  # some mutations (pixel bytes, values) keep the layout


def _written(pose7, intrinsics, sim_time=0.5, width=4, height=3, rgb_bytes=None) -> bytes:
    """A one-frame FrameSet in our layout with the given (possibly invalid) values."""
    header = write_frame_meta("a", 2, sim_time, pose7, intrinsics, width, height, False, None)
    rgb = np.zeros(rgb_bytes if rgb_bytes is not None else width * height * 3, np.uint8)
    depth = np.ones(width * height, np.float32)
    frame = EncodedFrame(
        header,
        EncodedPlane.create(pb.PIXEL_FORMAT_RGB8, pb.CODEC_RAW, width, height, rgb),
        EncodedPlane.create(pb.PIXEL_FORMAT_DEPTH_F32, pb.CODEC_RAW, width, height, depth),
    )
    return EncodedFrameSet(5, (frame,)).to_bytes()


IDENTITY = (0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)
GOOD_K = (4.0, 4.0, 1.5, 1.0)


@pytest.mark.parametrize(
    "message",
    [
        _written((0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0), GOOD_K),
        _written(IDENTITY, (0.0, 4.0, 1.5, 1.0)),
        _written(IDENTITY, (4.0, -4.0, 1.5, 1.0)),
        _written(IDENTITY, GOOD_K, sim_time=math.nan),
        _written((math.inf, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0), GOOD_K),
        _written(IDENTITY, GOOD_K, rgb_bytes=35),
    ],
    ids=["quaternion norm 2", "fx 0", "fy negative", "sim_time NaN", "x infinite", "rgb size"],
)
def test_decode_hands_invalid_values_to_the_python_path_which_names_them(native, message):
    assert wire_native.decode_single_frame(message, False) is None
    with pytest.raises(InvalidArgumentError):
        wire.frameset_from_proto(read_frameset_layout(message))


def test_decode_reads_a_valid_written_frame(native):
    decoded = wire_native.decode_single_frame(_written(IDENTITY, GOOD_K), False)
    assert decoded is not None and decoded.step_id == 5
    np.testing.assert_array_equal(decoded.observations["a"].pose, np.eye(4))


def test_pure_python_is_forced_by_the_environment():
    script = (
        "from bridge import wire_native; "
        "print(wire_native.NATIVE_CODEC, wire_native.CODEC_DESCRIPTION, sep='|')"
    )
    env = {**os.environ, PURE_PYTHON_ENV: "1"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    native, description = out.stdout.strip().split("|")
    assert native == "False" and PURE_PYTHON_ENV in description


def test_without_the_codec_both_functions_step_aside(monkeypatch):
    monkeypatch.setattr(wire_native, "_framecodec", None)
    blob = _python_bytes(1, {"a": _observation()}, 0)
    assert wire_native.encode_single_frame(1, {"a": _observation()}, wire.Codec.RAW, 0) is None
    assert wire_native.decode_single_frame(blob, False) is None


def test_loader_refuses_a_stale_build_and_a_missing_one(native, monkeypatch):
    from bridge import _native

    monkeypatch.delenv(PURE_PYTHON_ENV, raising=False)
    module, description = _native.load_framecodec()
    assert module is native and "C extension" in description
    monkeypatch.setattr(native, "VERSION", _native.FRAMECODEC_VERSION + 1)
    module, description = _native.load_framecodec()
    assert module is None and "pip install -e ." in description
    monkeypatch.setitem(sys.modules, "bridge._native._framecodec", None)  # import fails
    monkeypatch.delattr(_native, "_framecodec", raising=False)
    module, description = _native.load_framecodec()
    assert module is None and "not built" in description
