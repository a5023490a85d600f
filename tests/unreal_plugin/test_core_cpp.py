"""The C++ core's own unit tests (conventions vectors, navigation, chunking), via ctest."""

import subprocess

CTEST_TIMEOUT_S = 120


def test_cpp_unit_tests_pass(core_build):
    command = ["ctest", "--output-on-failure"]
    result = subprocess.run(command, cwd=core_build, capture_output=True, text=True, timeout=CTEST_TIMEOUT_S)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("test_conventions", "test_navigation", "test_chunking"):
        assert name in result.stdout
    assert "100% tests passed" in result.stdout
