"""MujocoWorld: the World contract, determinism, navigation, collision, hands, lifecycle."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from bridge.actions import NavLimits, integrate_nav, key_to_nav
from bridge.conventions import intrinsics_from_fov, is_rigid, look_at, se3_inverse
from bridge.engines.mujoco_world import MujocoWorld
from bridge.engines.scenes.rooms import AGENT_RADIUS, WALL_THICKNESS, level_camera
from bridge.hands import RIGHT, HandLimits, default_wrist_poses_cam, hands_keypoints
from bridge.types import (
    CAPABILITY_COLLISION,
    CAPABILITY_DEPTH,
    CAPABILITY_HANDS,
    CAPABILITY_RGB,
    Action,
    FailedPreconditionError,
    InvalidArgumentError,
    World,
)

KEY_W = 1
NOOP = Action.noop()


@pytest.fixture(scope="module")
def rooms():
    world = MujocoWorld(scene="rooms", height=48, width=64)
    yield world
    world.close()


@pytest.fixture(scope="module")
def tabletop():
    world = MujocoWorld(scene="tabletop", height=48, width=64)
    yield world
    world.close()


def _assert_frame(obs, height, width, hands):
    obs.validate()
    assert obs.rgb.shape == (height, width, 3) and obs.rgb.dtype == np.uint8
    assert obs.depth.shape == (height, width) and obs.depth.dtype == np.float32
    assert obs.pose.shape == (4, 4) and obs.pose.dtype == np.float64 and is_rigid(obs.pose)
    np.testing.assert_allclose(obs.K, intrinsics_from_fov(width, height, 70.0, axis="vertical"))
    assert np.all((obs.depth > 0) | np.isinf(obs.depth))
    if hands:
        assert obs.hand_keypoints.shape == (2, 21, 3) and obs.hand_keypoints.dtype == np.float32
    else:
        assert obs.hand_keypoints is None


def test_is_a_world_and_handshakes_before_reset():
    world = MujocoWorld(scene="tabletop", height=32, width=40, num_agents=2)
    assert isinstance(world, World)
    info = world.handshake()
    assert info.agent_ids == ("agent_0", "agent_1") and (info.height, info.width) == (32, 40)
    assert {CAPABILITY_RGB, CAPABILITY_DEPTH, CAPABILITY_COLLISION, CAPABILITY_HANDS} <= set(
        info.capabilities
    )
    assert CAPABILITY_HANDS not in MujocoWorld(scene="rooms").handshake().capabilities
    with pytest.raises(FailedPreconditionError):
        world.step({})
    world.close()


@pytest.mark.parametrize("family", ["rooms", "tabletop"])
def test_reset_and_step_shapes(family, rooms, tabletop):
    world = rooms if family == "rooms" else tabletop
    first = world.reset(seed=3)
    assert list(first) == ["agent_0"]
    obs = first["agent_0"]
    _assert_frame(obs, 48, 64, hands=family == "tabletop")
    assert obs.frame_id == 0 and obs.sim_time == 0.0 and not obs.collided
    for t in range(1, 3):
        obs = world.step({"agent_0": Action.from_key(5)})["agent_0"]
        _assert_frame(obs, 48, 64, hands=family == "tabletop")
        assert obs.frame_id == t and obs.sim_time == pytest.approx(t * 0.1)


@pytest.mark.parametrize("family", ["rooms", "tabletop"])
def test_same_seed_same_frames_bit_for_bit(family):
    actions = [Action.from_key(1), Action.from_nav([0.2, -0.3, 0.1, 0.5, -0.2, 0.0]), Action.from_key(6)]
    if family == "tabletop":
        actions.append(Action.from_hand([0.5, 0.5, 1.0, 0.0, 0.2, 0.0, 1.0] * 2))
    runs = []
    for _ in range(2):
        world = MujocoWorld(scene=family, height=32, width=32)
        frames = [world.reset(seed=11)["agent_0"]]
        frames += [world.step({"agent_0": a})["agent_0"] for a in actions]
        world.close()
        runs.append(frames)
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a.rgb, b.rgb)
        np.testing.assert_array_equal(a.depth, b.depth)
        np.testing.assert_array_equal(a.pose, b.pose)
        if a.hand_keypoints is not None:
            np.testing.assert_array_equal(a.hand_keypoints, b.hand_keypoints)


def test_different_seeds_different_scenes(rooms):
    frames = {seed: rooms.reset(seed=seed)["agent_0"] for seed in (0, 1)}
    xml = {seed: (rooms.reset(seed=seed), rooms.scene_spec.xml)[1] for seed in (0, 1)}
    assert xml[0] != xml[1]
    assert not np.array_equal(frames[0].rgb, frames[1].rgb)


def test_reset_without_seed_draws_fresh_scenes_reproducibly():
    a, b = MujocoWorld(seed=5, height=16, width=16), MujocoWorld(seed=5, height=16, width=16)
    xml_a = [(a.reset(), a.scene_spec.xml)[1] for _ in range(2)]
    xml_b = [(b.reset(), b.scene_spec.xml)[1] for _ in range(2)]
    assert xml_a == xml_b and xml_a[0] != xml_a[1]
    a.close()
    b.close()


def test_renders_640x480():
    world = MujocoWorld(scene="rooms", height=480, width=640)
    obs = world.reset(seed=2)["agent_0"]
    _assert_frame(obs, 480, 640, hands=False)
    assert obs.rgb.std() > 5.0  # an actual picture, not a cleared buffer
    world.close()


def test_scene_option_switches_family(rooms):
    obs = rooms.reset(seed=0, options={"scene": "tabletop"})["agent_0"]
    assert obs.hand_keypoints is not None
    obs = rooms.reset(seed=0, options={"scene": "rooms"})["agent_0"]
    assert obs.hand_keypoints is None


def test_start_poses_option_and_set_pose(rooms):
    rooms.reset(seed=4)
    centre = rooms.scene_spec.metadata["skylight_centre"]
    pose = level_camera((*centre, 1.4), yaw=0.3, pitch=0.2)
    obs = rooms.reset(seed=4, options={"start_poses": {"agent_0": pose}})["agent_0"]
    np.testing.assert_allclose(obs.pose, pose, atol=1e-12)
    obs = rooms.step({"agent_0": Action.from_key(KEY_W)})["agent_0"]
    teleported = rooms.set_pose("agent_0", pose)
    np.testing.assert_allclose(teleported.pose, pose, atol=1e-12)
    assert teleported.frame_id == obs.frame_id  # a teleport is not a time step


def test_navigation_follows_shared_semantics(rooms):
    rooms.reset(seed=6)
    centre = rooms.scene_spec.metadata["skylight_centre"]
    pose = level_camera((*centre, 1.5), yaw=1.0)  # the skylight room's centre is free space
    rooms.set_pose("agent_0", pose)
    for key in (KEY_W, 5, 7, 4):
        expected = integrate_nav(pose, key_to_nav(key), NavLimits())
        obs = rooms.step({"agent_0": Action.from_key(key)})["agent_0"]
        if not obs.collided:
            np.testing.assert_allclose(obs.pose, expected, atol=1e-9)
        pose = obs.pose


def test_multi_agent_cameras_move_independently():
    world = MujocoWorld(scene="rooms", height=24, width=32, num_agents=3)
    first = world.reset(seed=8)
    assert list(first) == ["agent_0", "agent_1", "agent_2"]
    poses = [first[a].pose for a in first]
    assert not np.allclose(poses[0], poses[1])
    after = world.step({"agent_1": Action.from_key(5)})  # the others take the noop
    np.testing.assert_allclose(after["agent_0"].pose, poses[0], atol=1e-12)
    np.testing.assert_allclose(after["agent_2"].pose, poses[2], atol=1e-12)
    assert not np.allclose(after["agent_1"].pose, poses[1])
    # One shared world: an agent placed where another stands sees the same picture.
    same = world.set_pose("agent_2", after["agent_0"].pose)
    np.testing.assert_array_equal(same.rgb, after["agent_0"].rgb)
    world.close()


def test_walking_into_a_wall_never_crosses_it(rooms):
    """Walk towards the building's x = 0 outer wall for far longer than the room is wide."""
    rooms.reset(seed=1)
    start = rooms.camera_pose("agent_0")
    pose = level_camera(start[:3, 3], yaw=math.pi)  # face -x
    rooms.set_pose("agent_0", pose)
    wall_face = rooms.scene_spec.metadata["bounds"][0] + WALL_THICKNESS / 2
    collided = []
    for _ in range(60):
        obs = rooms.step({"agent_0": Action.from_nav([1.0, 0.0, 0.0, 0.0, 0.0, 0.0])})["agent_0"]
        assert obs.pose[0, 3] >= wall_face + AGENT_RADIUS - 1e-9
        collided.append(obs.collided)
    assert collided[-1] and sum(collided) > 10
    # A blocked move keeps the position, but its rotation still applies.
    before = rooms.camera_pose("agent_0")
    obs = rooms.step({"agent_0": Action.from_nav([1.0, 0.0, 0.0, 1.0, 0.0, 0.0])})["agent_0"]
    assert obs.collided
    np.testing.assert_allclose(obs.pose[:3, 3], before[:3, 3], atol=1e-12)
    assert not np.allclose(obs.pose[:3, :3], before[:3, :3])


def test_cannot_leave_through_window_or_skylight():
    world = MujocoWorld(scene="rooms", height=16, width=16)
    world.reset(seed=0)
    x0, x1, y0, y1 = world.scene_spec.metadata["skylight_rect"]
    height = world.scene_spec.metadata["ceiling_height"]
    world.set_pose("agent_0", level_camera((0.5 * (x0 + x1), 0.5 * (y0 + y1), 1.5), 0.0))
    for _ in range(40):
        obs = world.step({"agent_0": Action.from_nav([0.0, 0.0, 1.0, 0.0, 0.0, 0.0])})["agent_0"]
    assert obs.collided and obs.pose[2, 3] < height
    world.close()


def test_bad_input_raises_invalid_argument(rooms):
    rooms.reset(seed=0)
    with pytest.raises(InvalidArgumentError, match="unknown agent id 'agent_9'"):
        rooms.step({"agent_9": NOOP})
    with pytest.raises(InvalidArgumentError, match="hand_vector"):
        rooms.step({"agent_0": Action.from_hand(np.zeros(14))})
    with pytest.raises(InvalidArgumentError, match="must be an Action"):
        rooms.step({"agent_0": 3})
    with pytest.raises(InvalidArgumentError, match="exactly one kind"):
        rooms.step({"agent_0": Action(key=1, nav_vector=np.zeros(6))})
    with pytest.raises(InvalidArgumentError, match="actions must map"):
        rooms.step([NOOP])
    with pytest.raises(InvalidArgumentError, match="pose"):
        rooms.set_pose("agent_0", np.full((4, 4), np.nan))
    with pytest.raises(InvalidArgumentError, match="pose"):
        rooms.set_pose("agent_0", np.ones((4, 4)))
    with pytest.raises(InvalidArgumentError, match="agent_id"):
        rooms.set_pose("nobody", np.eye(4))
    with pytest.raises(InvalidArgumentError, match="scene"):
        rooms.reset(options={"scene": "moon"})
    with pytest.raises(InvalidArgumentError, match="unknown keys"):
        rooms.reset(options={"gravity": 0})
    with pytest.raises(InvalidArgumentError, match="start_poses"):
        rooms.reset(options={"start_poses": {"agent_0": np.zeros((3, 3))}})
    with pytest.raises(InvalidArgumentError, match="num_agents"):
        MujocoWorld(num_agents=0)
    with pytest.raises(InvalidArgumentError, match="scene"):
        MujocoWorld(scene="kitchen")
    # The world still works after rejecting all of that.
    assert rooms.step({"agent_0": NOOP})["agent_0"].frame_id == 1


# ----------------------------------------------------------------------------- hands
def _lift_hands(world, steps=4):
    """Raise both hands (image-up) clear of the table and objects."""
    up = [0.0, -1.0, 0.0, 0.0, 0.0, 0.0]
    obs = None
    for _ in range(steps):
        obs = world.step({"agent_0": Action.from_hand([*up, 0.0, *up, 0.0])})["agent_0"]
    return obs


def _kinematic_keypoints(world, obs):
    wrists_cam = np.stack([se3_inverse(obs.pose) @ w for w in world.wrist_poses("agent_0")])
    return hands_keypoints(wrists_cam, world.grips("agent_0"))


def test_hand_keypoints_match_kinematic_model(tabletop):
    obs = tabletop.reset(seed=2)["agent_0"]
    # At reset the hands rest at the default wrist poses relative to the camera, open.
    np.testing.assert_allclose(
        obs.hand_keypoints, hands_keypoints(default_wrist_poses_cam(), [0, 0]), atol=1e-3
    )
    _lift_hands(tabletop)
    for grip in (0.5, 1.0):
        hold = [0.0] * 6 + [grip]
        for _ in range(4):  # the position actuators settle within a few steps
            obs = tabletop.step({"agent_0": Action.from_hand(hold + hold)})["agent_0"]
        error = np.linalg.norm(obs.hand_keypoints - _kinematic_keypoints(tabletop, obs), axis=-1)
        assert error.max() < 0.004, f"grip {grip}: engine and kinematic model differ by {error.max():.4f} m"


def test_grip_closes_fingers(tabletop):
    tabletop.reset(seed=2)
    open_hand = _lift_hands(tabletop).hand_keypoints
    close = [0.0] * 6 + [1.0]
    for _ in range(4):
        fist = tabletop.step({"agent_0": Action.from_hand(close + close)})["agent_0"].hand_keypoints
    for hand in (0, 1):
        for tip in (8, 12, 16, 20):
            reach_open = np.linalg.norm(open_hand[hand, tip] - open_hand[hand, 0])
            reach_fist = np.linalg.norm(fist[hand, tip] - fist[hand, 0])
            assert reach_fist < reach_open - 0.05


def test_hand_action_moves_wrist_in_camera_frame(tabletop):
    tabletop.reset(seed=5)
    obs = _lift_hands(tabletop)
    before = se3_inverse(obs.pose) @ tabletop.wrist_poses("agent_0")[RIGHT]
    right = [1.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0]
    obs = tabletop.step({"agent_0": Action.from_hand([0.0] * 7 + right)})["agent_0"]
    after = se3_inverse(obs.pose) @ tabletop.wrist_poses("agent_0")[RIGHT]
    step = HandLimits().max_translation
    np.testing.assert_allclose(after[:3, 3] - before[:3, 3], [step, 0.0, 0.5 * step], atol=1e-3)


def test_hand_push_moves_an_object(tabletop):
    """Drive the right hand behind the nearest object and sweep through it: contact pushes it."""
    obs = tabletop.reset(seed=0)["agent_0"]
    model, data = tabletop.model, tabletop.data
    objects = [b for b in range(model.nbody) if model.body(b).name.startswith("object")]
    wrist = tabletop.wrist_poses("agent_0")[RIGHT]
    target = min(objects, key=lambda b: np.linalg.norm(data.xpos[b][:2] - wrist[:3, 3][:2]))
    start = data.xpos[target].copy()
    towards = start[:2] - obs.pose[:2, 3]
    towards /= np.linalg.norm(towards)
    rotation = obs.pose[:3, :3]

    def move_towards(goal):
        current = tabletop.wrist_poses("agent_0")[RIGHT][:3, 3]
        delta_cam = rotation.T @ (goal - current) / HandLimits().max_translation
        action = np.zeros(14)
        action[7:10] = np.clip(delta_cam, -1.0, 1.0)
        tabletop.step({"agent_0": Action.from_hand(action)})

    # Over the top to behind the object (fingers ~18 cm long point forward, so the wrist
    # stays BEHIND metres back), down to its height, then far enough that fingers pass it.
    BEHIND, THROUGH = 0.28, 0.1
    above_behind = np.array([*(start[:2] - BEHIND * towards), start[2] + 0.12])
    behind = np.array([*(start[:2] - BEHIND * towards), start[2] + 0.01])
    through = np.array([*(start[:2] - THROUGH * towards), start[2] + 0.01])
    for goal, steps in ((above_behind, 10), (behind, 5)):
        for _ in range(steps):
            move_towards(goal)
    assert np.linalg.norm(data.xpos[target] - start) < 0.005  # not touched yet
    for _ in range(12):
        move_towards(through)
    assert np.linalg.norm(data.xpos[target][:2] - start[:2]) > 0.03


def test_hand_grasps_and_lifts_an_object(tabletop):
    """Lower the open right hand onto the nearest object, close it, lift: the object comes along.

    The point `grasp_along` metres out along the fingers (mid-finger) is driven to just above
    the object's centre; friction between closed fingers and the object does the rest.
    """
    grasp_along, above_centre, hover, lift = 0.11, 0.02, 0.15, 0.20
    obs = tabletop.reset(seed=0)["agent_0"]
    model, data = tabletop.model, tabletop.data
    objects = [b for b in range(model.nbody) if model.body(b).name.startswith("object")]
    wrist = tabletop.wrist_poses("agent_0")[RIGHT]
    target = min(objects, key=lambda b: np.linalg.norm(data.xpos[b][:2] - wrist[:3, 3][:2]))
    start = data.xpos[target].copy()

    def drive(goal, grip, steps):
        for _ in range(steps):
            wrist = tabletop.wrist_poses("agent_0")[RIGHT]
            grasp_point = wrist[:3, :3] @ [grasp_along, 0.0, 0.0] + wrist[:3, 3]
            action = np.zeros(14)
            delta_cam = obs.pose[:3, :3].T @ (goal - grasp_point) / HandLimits().max_translation
            action[7:10] = np.clip(delta_cam, -1.0, 1.0)
            action[13] = grip
            tabletop.step({"agent_0": Action.from_hand(action)})

    drive(start + np.array([0.0, 0.0, hover]), 0.0, 12)
    drive(start + np.array([0.0, 0.0, above_centre]), 0.0, 8)
    drive(start + np.array([0.0, 0.0, above_centre]), 1.0, 6)
    drive(start + np.array([0.0, 0.0, lift]), 1.0, 10)
    assert data.xpos[target][2] - start[2] > 0.1  # lifted off the table in the closed hand


# ----------------------------------------------------------------------------- lifecycle
def test_close_is_idempotent_and_reset_reopens():
    world = MujocoWorld(scene="rooms", height=16, width=16)
    world.reset(seed=0)
    world.close()
    world.close()
    assert world.reset(seed=0)["agent_0"].rgb.shape == (16, 16, 3)
    world.close()


def test_no_errors_at_interpreter_exit_without_close():
    code = (
        "from bridge.engines.mujoco_world import MujocoWorld\n"
        "w = MujocoWorld(scene='tabletop', height=16, width=16)\n"
        "w.reset(seed=0)\n"
        "v = MujocoWorld(height=16, width=16)\n"
        "v.reset(seed=1)\n"
        "print('done')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"
    assert result.stderr.strip() == "", result.stderr


def test_look_at_helper_agrees_with_level_camera():
    """The scene helper used above builds the same OpenCV pose as conventions.look_at."""
    pose = level_camera((1.0, 2.0, 1.5), yaw=0.7)
    target = pose[:3, 3] + [math.cos(0.7), math.sin(0.7), 0.0]
    np.testing.assert_allclose(pose, look_at(pose[:3, 3], target), atol=1e-12)


_CHANGING_THREADS_SCRIPT = """
from concurrent.futures import ThreadPoolExecutor
from bridge.engines.mujoco_world import MujocoWorld
from bridge.types import Action
pools = [ThreadPoolExecutor(1) for _ in range(4)]
for episode in range(3):
    world = pools[episode % 4].submit(MujocoWorld, scene="rooms").result()
    pools[(episode + 1) % 4].submit(world.reset, seed=episode).result()
    for i in range(40):
        pools[i % 4].submit(world.step, {"agent_0": Action.from_key(1 + i % 6)}).result()
    pools[(episode + 2) % 4].submit(world.close).result()
print("ok")
"""


def test_a_world_can_be_driven_from_changing_threads():
    """A gRPC server calls one world from different pool threads, one call at a time.

    A GL context left current on the previous thread made OSMesa segfault here (3 of 3
    runs before the fix), so this runs in a subprocess: a crash fails the test, not the suite.
    """
    result = subprocess.run(
        [sys.executable, "-c", _CHANGING_THREADS_SCRIPT], capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", (
        result.returncode,
        result.stderr[-2000:],
    )
