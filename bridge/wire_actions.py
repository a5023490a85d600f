"""Actions on the wire: StepRequests written and read, with validation naming the field.

Split from `bridge.wire` (which re-exports everything here). A step's request is built
and parsed on every step, so the common one-key request is written and recognised by hand;
everything else goes through protobuf.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

from bridge.frame_meta import varint_at
from bridge.pbwire import varint
from bridge.proto_gen.genworld.v1 import types_pb2 as pb
from bridge.types import NUM_NAV_KEYS, Action, InvalidArgumentError


def action_to_proto(agent_id: str, action: Action) -> pb.Action:
    """An agent's Action as a wire `Action`."""
    kind = action.kind
    if kind == "key":
        return pb.Action(agent_id=agent_id, key=action.key)
    if kind == "nav":
        return pb.Action(agent_id=agent_id, nav=pb.ContinuousNav(values=action.nav_vector.tolist()))
    return pb.Action(agent_id=agent_id, hand=pb.HandAction(values=action.hand_vector.tolist()))


_STEP_ID_KEY = b"\x08"  # StepRequest.step_id: field 1, varint
_ACTION_KEY = b"\x12"  # StepRequest.actions: field 2, LEN
ACTION_FIELD_CACHE_SIZE = 1024


@functools.lru_cache(maxsize=ACTION_FIELD_CACHE_SIZE)
def _key_action_field(agent_id: str, key: int) -> bytes:
    """A StepRequest.actions entry pressing `key` (the same few recur every step)."""
    body = pb.Action(agent_id=agent_id, key=key).SerializeToString()
    return _ACTION_KEY + varint(len(body)) + body


def encode_step_actions(actions: Mapping[str, Action]) -> bytes:
    """The serialised `StepRequest.actions` entries (written by hand: built on every step).

    Raises:
        InvalidArgumentError: a value of `actions` is not an Action.
    """
    parts = []
    for agent_id, action in actions.items():
        if not isinstance(action, Action):
            raise InvalidArgumentError(
                f"actions[{agent_id!r}] must be an Action, got {type(action).__name__}"
            )
        if action.key is not None:
            parts.append(_key_action_field(agent_id, action.key))
        else:
            body = action_to_proto(agent_id, action).SerializeToString()
            parts += [_ACTION_KEY, varint(len(body)), body]
    return b"".join(parts)


def step_request(step_id: int, encoded_actions: bytes) -> bytes:
    """The serialised `StepRequest` of `step_id` and `encode_step_actions`' output."""
    return _STEP_ID_KEY + varint(step_id) + encoded_actions


def read_key_step_request(raw: bytes) -> tuple[int, str, int] | None:
    """(step_id, agent_id, key) of a StepRequest holding exactly one key action, else None.

    Recognises only the canonical bytes of such a request (what `step_request` and
    protobuf write), so a match means protobuf would parse the same values; anything
    else, valid or not, returns None and goes through protobuf and `actions_from_proto`.
    The values are not validated here.
    """
    if type(raw) is not bytes or len(raw) < 2 or raw[0] != _STEP_ID_KEY[0]:
        return None
    try:
        step_id, pos = varint_at(raw, 1)
        size, name_size = raw[pos + 1], raw[pos + 3]
        # actions[0]: one LEN field of < 128 bytes holding agent_id (< 128 bytes) and key.
        if raw[pos] != _ACTION_KEY[0] or size >= 0x80 or pos + 2 + size != len(raw):
            return None
        if raw[pos + 2] != 0x0A or name_size >= 0x80:
            return None
        pos += 4 + name_size
        if pos + 2 != len(raw) or raw[pos] != 0x10 or raw[pos + 1] >= 0x80:
            return None
        return step_id, raw[pos - name_size : pos].decode(), raw[pos + 1]
    except (IndexError, UnicodeDecodeError, InvalidArgumentError):
        return None


def action_from_proto(msg: pb.Action, field: str = "action") -> tuple[str, Action]:
    """(agent_id, Action) of a wire `Action`, validated (key range, lengths, finiteness, grips)."""
    kind = msg.WhichOneof("kind")
    try:
        if kind == "key":
            return msg.agent_id, Action.from_key(msg.key)
        if kind == "nav":
            return msg.agent_id, Action.from_nav(list(msg.nav.values))
        if kind == "hand":
            return msg.agent_id, Action.from_hand(list(msg.hand.values))
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{field}.{kind}: {exc}") from exc
    raise InvalidArgumentError(f"{field} sets no action (expected one of key, nav, hand)")


# Validated key actions by key: Actions are immutable values, so every step pressing the
# same key can share one (saves building and validating a dataclass per agent per step).
KEY_ACTIONS = {key: Action.from_key(key) for key in range(NUM_NAV_KEYS)}


def actions_from_proto(
    msgs: Iterable[pb.Action], agent_ids: Iterable[str], field: str = "StepRequest.actions"
) -> dict[str, Action]:
    """Per-agent actions of a StepRequest; unknown or repeated agents are refused."""
    known = agent_ids if isinstance(agent_ids, tuple | frozenset | set) else tuple(agent_ids)
    out: dict[str, Action] = {}
    for i, msg in enumerate(msgs):
        action = KEY_ACTIONS.get(msg.key) if msg.WhichOneof("kind") == "key" else None
        agent_id = msg.agent_id
        if action is None:
            agent_id, action = action_from_proto(msg, f"{field}[{i}]")
        if agent_id not in known:
            raise InvalidArgumentError(
                f"{field}[{i}].agent_id: unknown agent {agent_id!r}; this world has {list(known)}"
            )
        if agent_id in out:
            raise InvalidArgumentError(f"{field}[{i}].agent_id: agent {agent_id!r} already has an action")
        out[agent_id] = action
    return out
