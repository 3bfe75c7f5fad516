"""The committed contract artifacts match a fresh ``forge build`` of contracts/src."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import NODE_BIN, ROOT


def test_committed_artifacts_are_current() -> None:
    env = {**os.environ, "PATH": f"{NODE_BIN}:{os.environ['PATH']}"}
    build = subprocess.run(
        [str(NODE_BIN / "forge"), "build", "--offline"],
        cwd=ROOT / "contracts",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "export_artifacts.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_every_artifact_loads() -> None:
    from contracts.artifacts import artifact_names, load_artifact

    names = artifact_names()
    assert "FrostVerifierHarness" in names
    for name in names:
        artifact = load_artifact(name)
        assert artifact.abi is not None
