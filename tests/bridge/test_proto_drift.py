"""The committed stubs in bridge/proto_gen must be exactly what the .proto files generate."""

from pathlib import Path

import pytest

from bridge._codegen import STUB_DIR, generate

REGENERATE = "run `python -m bridge._codegen` and commit bridge/proto_gen"


def _files(root: Path) -> dict[Path, bytes]:
    return {
        p.relative_to(root): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_committed_stubs_match_the_protos(tmp_path):
    pytest.importorskip("grpc_tools", reason="grpcio-tools (dev dependency) regenerates the stubs")
    generate(tmp_path)
    fresh, committed = _files(tmp_path), _files(STUB_DIR)
    missing = sorted(str(p) for p in fresh.keys() - committed.keys())
    stale = sorted(str(p) for p in committed.keys() - fresh.keys())
    changed = sorted(str(p) for p in fresh.keys() & committed.keys() if fresh[p] != committed[p])
    assert not (missing or stale or changed), (
        f"generated stubs drifted from proto/ (missing: {missing}, stale: {stale}, "
        f"changed: {changed}); {REGENERATE}"
    )


def test_generation_is_idempotent_in_place(tmp_path):
    pytest.importorskip("grpc_tools")
    generate(tmp_path)
    first = _files(tmp_path)
    generate(tmp_path)  # regenerating over existing stubs must not change them (e.g. stack headers)
    assert _files(tmp_path) == first, REGENERATE
