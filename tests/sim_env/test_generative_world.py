"""GenerativeWorld on tiny64 with random weights (CPU): contract, exact poses, determinism,
batch invariance, constant cache memory, collision blocking, teleports and the World wrapper."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bridge.actions import NavLimits, integrate_nav
from bridge.conventions import intrinsics_from_fov, look_at
from bridge.types import Action, Observation, World
from sim_env import conditioning as conditioning_module
from sim_env import kinematics as kin
from sim_env import runtime as runtime_module
from sim_env.generative_world import GenerativeWorld
from sim_env.memory.reference_pin import hand_free_mask

H = W = 64
STEPS = 2  # denoising steps: enough to exercise the sampler, fast on a CPU
# Stream 0 alone vs. inside a batch of 4: measured max relative |Δdepth| = 4.6e-6 and identical rgb
# on a 2-core CPU (float32 GEMMs block differently per batch size); rgb may flip by one level.
BATCH_DEPTH_RTOL = 1e-4
BATCH_RGB_ATOL = 1


def reference(seed: int, depth_m: float = 4.0) -> Observation:
    rng = np.random.default_rng(seed)
    depth = (depth_m + rng.uniform(0, 1, size=(H, W))).astype(np.float32)
    pose = look_at([0.0, 0.1 * seed, 1.2], [3.0, 0.1 * seed, 1.2])
    return Observation(
        rgb=rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8),
        depth=depth,
        pose=pose,
        K=intrinsics_from_fov(W, H, 70.0),
        frame_id=0,
        sim_time=0.0,
    )


def batch_tensors(obs: list[Observation]) -> tuple[torch.Tensor, ...]:
    return tuple(
        torch.as_tensor(np.stack([getattr(o, f) for o in obs])) for f in ("rgb", "depth", "K", "pose")
    )


def make(**kw) -> GenerativeWorld:
    return GenerativeWorld(denoising_steps=kw.pop("denoising_steps", STEPS), **kw)


def test_world_protocol_shapes_and_actions() -> None:
    world = make(collision_depth_m=0.0)  # random weights generate arbitrary depth: never block here
    assert isinstance(world, World)
    info = world.handshake()
    assert info.agent_ids == ("agent_0",) and (info.height, info.width) == (H, W)
    obs = world.reset(seed=3, options={"reference": {"agent_0": reference(0)}})["agent_0"]
    obs.validate()
    for action in (Action.from_key(1), Action.from_key(5), Action.from_nav([0.5, 0, 0, 0, -0.3, 0])):
        before = obs.pose
        obs = world.step({"agent_0": action})["agent_0"]
        obs.validate()
        assert obs.rgb.dtype == np.uint8 and obs.rgb.shape == (H, W, 3)
        assert obs.depth.dtype == np.float32 and obs.depth.shape == (H, W)
        assert obs.pose.dtype == np.float64 and obs.K.shape == (3, 3) and not obs.collided
        assert obs.hand_keypoints is None
        np.testing.assert_allclose(obs.pose, integrate_nav(before, _nav(action), NavLimits()), atol=1e-12)
    assert obs.frame_id == 3 and obs.sim_time == pytest.approx(0.3)
    hand = np.r_[0.5, 0, 0, 0, 0, 0.2, 1.0, 0, 0, 0, 0, 0, 0, 0.3]
    obs = world.step({"agent_0": Action.from_hand(hand)})["agent_0"]
    assert obs.hand_keypoints is not None and obs.hand_keypoints.shape == (2, 21, 3)
    with pytest.raises(ValueError):
        world.step({"nobody": Action.noop()})
    world.close()
    world.close()


def _nav(action: Action) -> np.ndarray:
    from bridge.actions import action_to_nav

    return action_to_nav(action)


def test_returned_pose_is_the_integrated_pose() -> None:
    world = make(denoising_steps=1, collision_depth_m=0.0)
    world.reset_batch(*batch_tensors([reference(0)]))
    rng = np.random.default_rng(0)
    pose = world.pose[0].numpy().copy()
    for _ in range(5):
        nav = rng.uniform(-1, 1, size=6)
        previous = world.pose.clone()
        out = world.step_batch(torch.as_tensor(nav)[None])
        exact = kin.integrate_nav(previous, torch.as_tensor(nav)[None], NavLimits())[0]
        assert torch.equal(out["pose"][0], exact)  # bit-identical to the device kinematics
        pose = integrate_nav(pose, nav, NavLimits())
        np.testing.assert_allclose(out["pose"][0].numpy(), pose, atol=1e-12, rtol=0)


def _rollout(world: GenerativeWorld, refs: list[Observation], steps: int, seed: int) -> list[dict]:
    world.reset_batch(*batch_tensors(refs), stream_seeds=[seed + 101 * i for i in range(len(refs))])
    nav = torch.zeros(len(refs), 6, dtype=torch.float64)
    nav[:, 0], nav[:, 3] = 0.5, 0.3
    return [{k: v.clone() for k, v in world.step_batch(nav).items()} for _ in range(steps)]


def test_determinism_under_a_seed() -> None:
    a = _rollout(make(seed=1), [reference(0)], 3, seed=7)
    b = _rollout(make(seed=1), [reference(0)], 3, seed=7)
    c = _rollout(make(seed=1), [reference(0)], 3, seed=8)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x["rgb"], y["rgb"]) and torch.equal(x["depth"], y["depth"])
    assert not torch.equal(a[-1]["rgb"], c[-1]["rgb"])


def test_batch_invariance() -> None:
    alone = _rollout(make(seed=2), [reference(0)], 3, seed=5)
    batch = _rollout(make(seed=2, num_worlds=4), [reference(i) for i in range(4)], 3, seed=5)
    for x, y in zip(alone, batch, strict=True):
        torch.testing.assert_close(y["depth"][:1], x["depth"], rtol=BATCH_DEPTH_RTOL, atol=0)
        assert (y["rgb"][:1].int() - x["rgb"].int()).abs().max() <= BATCH_RGB_ATOL
        assert torch.equal(y["pose"][:1], x["pose"])


def test_cache_memory_constant_over_many_steps() -> None:
    world = make(denoising_steps=1, memory_capacity=4096)
    world.reset_batch(*batch_tensors([reference(0)]))
    tensors = [world.cache.keys, world.cache.values, world.cache.valid, world.cache.poses, world.memory.xyz]
    before = [(t.data_ptr(), t.shape) for t in tensors]
    nbytes = world.cache.memory_bytes()
    nav = torch.tensor([[0.0, 0.0, 0.0, 1.0, 0.2, 0.0]], dtype=torch.float64)  # turn: new views
    for _ in range(200):  # 2,000 takes ~2 min on a 2-core CPU; shapes are static either way
        world.step_batch(nav)
    assert [(t.data_ptr(), t.shape) for t in tensors] == before
    assert world.cache.memory_bytes() == nbytes
    assert bool(world.cache.valid[0, world.cache.memory.start : world.cache.memory.stop].any())


def test_collision_blocks_forward_motion() -> None:
    # the generated-depth rule alone (the reference's own depth is tested below)
    world = make(denoising_steps=1, collision_depth_m=0.5, reference_collisions=False)
    near = reference(0, depth_m=0.1)
    near = Observation(**{**near.__dict__, "depth": np.full((H, W), 0.2, np.float32)})
    world.reset_batch(*batch_tensors([near]))
    start = world.pose.clone()
    out = world.step_batch(torch.tensor([[1.0, 0, 0, 0.5, 0, 0]], dtype=torch.float64))
    assert bool(out["collided"][0])
    expected = kin.integrate_nav(
        start, torch.tensor([[0.0, 0, 0, 0.5, 0, 0]], dtype=torch.float64), NavLimits()
    )
    assert torch.equal(out["pose"], expected)  # the yaw still applies, the forward move does not
    world.depth.fill_(5.0)  # clear view ahead: the next forward step moves and reports no collision
    before = out["pose"].clone()
    out = world.step_batch(torch.tensor([[1.0, 0, 0, 0, 0, 0]], dtype=torch.float64))
    assert not bool(out["collided"][0]) and not torch.equal(out["pose"], before)


@pytest.mark.parametrize(
    ("rule", "pin", "blocked"), [(True, None, True), (False, None, False), (True, False, False)]
)
def test_pinned_reference_depth_blocks_a_wall_the_generated_frame_draws_far(rule, pin, blocked) -> None:
    """The reference's wall at 0.2 m stops the agent although the generated depth says 5 m ahead."""
    world = make(denoising_steps=1, collision_depth_m=0.5, reference_collisions=rule, pin_reference=pin)
    near = reference(0)
    near = Observation(**{**near.__dict__, "depth": np.full((H, W), 0.2, np.float32)})
    world.reset_batch(*batch_tensors([near]))
    assert torch.isinf(world.reference_depth).all()  # the reference frame itself: nothing splatted yet
    world.teleport_batch(world.pose.clone(), torch.ones(1, dtype=torch.bool))  # generate in place
    centre = kin.depth_ahead(world.reference_depth)
    assert bool(torch.isfinite(centre).all()) == blocked  # only kept when the rule reads it
    if blocked:
        torch.testing.assert_close(centre, torch.tensor([0.2]), rtol=0, atol=0.02)
    world.depth.fill_(5.0)
    out = world.step_batch(torch.tensor([[1.0, 0, 0, 0, 0, 0]], dtype=torch.float64))
    assert bool(out["collided"][0]) == blocked
    world.reset_batch(*batch_tensors([near]))
    assert torch.isinf(world.reference_depth).all()  # a reset forgets the old view's reference depth


def rendered_at_the_same_pose(world: GenerativeWorld, monkeypatch: pytest.MonkeyPatch) -> torch.Tensor:
    """Step stream 0 in place and return the memory render its condition was built from (H, W, 4)."""
    seen = {}
    build = runtime_module.build_condition

    def spy(values: torch.Tensor, *args: object) -> torch.Tensor:
        seen["values"] = values.clone()
        return build(values, *args)

    monkeypatch.setattr(runtime_module, "build_condition", spy)  # a spy inside this unit test only
    world.teleport_batch(world.pose.clone(), torch.ones(1, dtype=torch.bool))
    return seen["values"][0]


@pytest.mark.parametrize(("margin", "shows_reference"), [(4.0, True), (0.0, False)])
def test_pinned_margin_keeps_the_reference_in_front_of_slightly_near_generated_geometry(
    margin, shows_reference, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A generated surface 10 % nearer than the reference hides it only without the margin."""
    world = make(denoising_steps=1, pinned_margin=margin)
    ref = reference(0)
    world.reset_batch(*batch_tensors([ref]))
    rgb, depth, K, pose = batch_tensors([ref])
    world.memory.insert(torch.zeros_like(rgb), 0.9 * depth, K, pose)  # unpinned, black, a bit near
    rendered = rendered_at_the_same_pose(world, monkeypatch)
    pinned = rendered[..., 3] > 0.5
    assert bool(pinned.float().mean() > 0.9) == shows_reference
    with pytest.raises(ValueError, match="pinned_margin"):
        make(pinned_margin=-1.0)


@pytest.mark.parametrize("footprints", [True, False])
def test_a_near_generated_wall_hides_the_reference_behind_it_but_not_from_the_collision_rule(
    footprints, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wall's voxels land 7 pixels apart at 0.3 m; the reference 4 m away shows between them."""
    world = make(denoising_steps=1, footprint_occlusion=footprints)
    ref = reference(0)
    world.reset_batch(*batch_tensors([ref]))
    rgb, depth, K, pose = batch_tensors([ref])
    world.memory.insert(torch.zeros_like(rgb), torch.full_like(depth, 0.3), K, pose)  # generated
    rendered = rendered_at_the_same_pose(world, monkeypatch)
    reference_share = float((rendered[..., 3] > 0.5).float().mean())
    assert reference_share < 0.05 if footprints else reference_share > 0.5
    assert bool(torch.isfinite(kin.depth_ahead(world.reference_depth)).all())  # its walls still stand


@pytest.mark.parametrize("passthrough", [True, False])
def test_reference_passthrough_copies_the_pinned_reference_into_the_frame(
    passthrough, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Back at the reference pose the frame is the pinned splat exactly, with random weights."""
    world = make(config="tiny64-colour-gate-fill-ref", denoising_steps=1, reference_passthrough=passthrough)
    assert world.reference_passthrough is passthrough
    world.reset_batch(*batch_tensors([reference(0)]))
    rendered = rendered_at_the_same_pose(world, monkeypatch)
    pinned = rendered[..., 3] > 0.5
    assert bool(pinned.float().mean() > 0.9)
    error = (world.rgb[0].float() - rendered[..., :3])[pinned].abs()
    assert bool(error.max() == 0) == passthrough
    assert make().reference_passthrough is False  # tiny64 has no provenance channel to copy by


def test_reference_passthrough_leaves_the_boxes_of_the_hands_to_the_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hand may now cover what the reference showed: its box is not copied, the rest is."""
    world = make(config="tiny64-colour-gate-fill-ref", denoising_steps=1)
    assert world.reference_passthrough and world.carve_free_space  # the defaults
    world.reset_batch(*batch_tensors([reference(0)]))
    seen = {}
    build = runtime_module.build_condition

    def spy(values: torch.Tensor, *args: object) -> torch.Tensor:
        seen["values"] = values.clone()
        return build(values, *args)

    monkeypatch.setattr(runtime_module, "build_condition", spy)  # a spy inside this unit test only
    hand = torch.zeros(1, 14, dtype=torch.float64)
    hand[0, 2] = hand[0, 9] = 0.5  # both wrists forward, in view; the camera stays where it was
    world.step_batch(torch.zeros(1, 6, dtype=torch.float64), hand)
    rendered = seen["values"][0]
    pinned = rendered[..., 3] > 0.5
    keypoints = world.hands.keypoints(world.wrist, world.grip)
    free = hand_free_mask(keypoints, world.hands_active, world.K, *pinned.shape)[0]
    assert bool((pinned & free).any()) and bool((pinned & ~free).any())
    error = (world.rgb[0].float() - rendered[..., :3]).abs().amax(-1)
    assert bool(error[pinned & free].max() == 0)  # copied
    assert bool(error[pinned & ~free].max() > 0)  # drawn by the model


def test_reference_surfels_copy_the_reference_between_its_sparse_voxels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reference nearer than a voxel per pixel splats sparsely; its surfels are copied whole."""
    world = make(config="tiny64-colour-gate-fill-ref", denoising_steps=1)
    assert world.reference_surfels  # the default
    assert not make(config="tiny64-colour-gate-fill-ref", reference_surfels=False).reference_surfels
    assert not make(reference_surfels=True).reference_surfels  # tiny64: no passthrough to copy by
    world.reset_batch(*batch_tensors([reference(0, depth_m=0.3)]))
    seen = {}
    surfels = conditioning_module.reference_surfels

    def spy(*args: object, **kwargs: object) -> tuple[torch.Tensor, torch.Tensor]:
        seen["shown"], seen["colour"] = surfels(*args, **kwargs)
        seen["valid"], seen["pinned"] = args[2], args[3]
        return seen["shown"], seen["colour"]

    monkeypatch.setattr(conditioning_module, "reference_surfels", spy)  # a spy inside this unit test only
    for _ in range(2):  # the second step's splat also holds the first's generated voxels
        world.step_batch(torch.zeros(1, 6, dtype=torch.float64))
    shown, valid, pinned = seen["shown"][0], seen["valid"][0], seen["pinned"][0]
    assert bool((shown & valid & ~pinned).any())  # generated voxels between the reference's are covered
    values = seen["colour"][0]  # colour, then depth
    error = (world.rgb[0].float() - values[..., :3]).abs().amax(-1)
    # Copied, up to the colour's rounding to uint8 (holes take the filled anchor's mean instead).
    assert float(error[shown & valid].max()) <= 0.5
    torch.testing.assert_close(world.depth[0][shown], values[..., 3][shown], rtol=1e-4, atol=1e-5)


def test_set_pose_teleports_only_that_agent() -> None:
    world = make(denoising_steps=1, agents_per_world=2)
    world.reset(options={"reference": {"agent_0": reference(0), "agent_1": reference(1)}})
    other = world.pose[1].clone()
    keys = world.cache.keys.clone()
    target = look_at([1.0, 2.0, 1.5], [4.0, 2.0, 1.0])
    obs = world.set_pose("agent_0", target)
    np.testing.assert_allclose(obs.pose, target, atol=1e-12)
    assert obs.frame_id == 0 and not obs.collided
    assert torch.equal(world.pose[1], other)
    assert torch.equal(world.cache.keys[:, 1], keys[:, 1])


def test_reset_from_mujoco_reference() -> None:
    from bridge.engines.mujoco_world import MujocoWorld

    world = make(denoising_steps=1)
    obs = world.reset(seed=4, options={"scene": "rooms"})["agent_0"]
    engine = MujocoWorld("rooms", H, W)
    truth = engine.reset(seed=4)["agent_0"]
    engine.close()
    np.testing.assert_array_equal(obs.rgb, truth.rgb)
    np.testing.assert_array_equal(obs.pose, truth.pose)
    obs = world.step({"agent_0": Action.from_key(1)})["agent_0"]
    obs.validate()


def test_condition_layout_and_hand_skeleton() -> None:
    from sim_env.conditioning import build_condition, hand_skeleton_map
    from sim_env.model.config import encode_depth, get_config

    cfg = get_config("tiny64")
    hands = kin.HandKinematics()
    kp = hands.keypoints(hands.default_wrists[None], torch.zeros(1, 2, dtype=torch.float64))
    K = torch.as_tensor(intrinsics_from_fov(W, H, 70.0))[None]
    drawn = hand_skeleton_map(kp.repeat(2, 1, 1, 1), torch.tensor([True, False]), K.repeat(2, 1, 1), H, W)
    assert drawn.shape == (2, H, W) and float(drawn[0].max()) == pytest.approx(1.0, abs=0.2)
    assert float(drawn[0].sum()) > 20 and not drawn[1].any()  # inactive stream: all zeros
    mask = torch.zeros(1, H, W, dtype=torch.bool)
    mask[:, :8] = True
    rgb = torch.full((1, H, W, 3), 255, dtype=torch.uint8)
    depth = torch.full((1, H, W), 2.0)
    cond = build_condition(rgb, depth, mask, drawn[:1], cfg)
    assert cond.shape == (1, cfg.condition_channels, cfg.chunk_frames, H, W)
    assert torch.all(cond[0, :3, 0, :8] == 1.0) and torch.all(cond[0, :4, 0, 8:] == 0.0)
    torch.testing.assert_close(cond[0, 3, 0, :8], encode_depth(depth)[0, :8])
    assert torch.equal(cond[0, 4, 0], mask[0].float()) and torch.equal(cond[0, 5, 0], drawn[0])


def test_precomputed_camera_rays_match_plucker_input() -> None:
    """The step's Plücker rays (camera rays from reset, rotated per step) equal plucker_input's."""
    from sim_env.conditioning import camera_rays, plucker_input, rays_to_plucker
    from sim_env.model.config import get_config

    cfg = get_config("tiny64")
    K = torch.as_tensor(intrinsics_from_fov(W, H, 70.0)).expand(3, 3, 3)
    pose = torch.stack([torch.as_tensor(look_at([0, 0.1 * i, 1.2], [3, 0.5 * i, 0.2])) for i in range(3)])
    expected = plucker_input(K, pose, cfg)
    torch.testing.assert_close(rays_to_plucker(camera_rays(K, cfg), pose, cfg), expected, rtol=0, atol=1e-5)
