"""``xon feeds ...`` on the committed replay recording (no network)."""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from aggregation.stats import median, to_fixed_point
from feeds.config import load_default_config
from feeds.snapshots import load_manifest
from oracle.cli import main

ROOT = Path(__file__).resolve().parents[2]
REPLAY = ROOT / "feeds" / "replay" / "default"
HEX = set("0123456789abcdef")


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["feeds", "check", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_replay_check_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run_json(capsys, "--replay", str(REPLAY))
    assert code == 0
    config = load_default_config()
    assert list(doc) == [f.id for f in config.feeds]
    recorded = {e.body_sha256 for e in load_manifest(REPLAY)}
    for feed in config.feeds:
        obs = doc[feed.id]
        assert obs["decimals"] == feed.decimals == 8
        value = Decimal(obs["value"])
        assert value > 0
        assert -value.as_tuple().exponent == obs["decimals"]  # type: ignore[operator]
        assert len(obs["sources_used"]) >= 1
        assert all(set(d) >= {"source", "reason"} for d in obs["sources_dropped"])
        assert set(obs["sources_used"]).isdisjoint(d["source"] for d in obs["sources_dropped"])
        assert Decimal(obs["dispersion"]) >= 0
        assert obs["snapshots"] and set(obs["snapshots"]) <= recorded
        assert all(len(h) == 64 and set(h) <= HEX for h in obs["snapshots"])
        # The value is the median of the per-source values, rounded half-even.
        per_source = [Decimal(v) for v in obs["source_values"].values()]
        assert len(per_source) >= feed.min_sources
        assert obs["value_fixed"] == to_fixed_point(median(per_source), feed.decimals)
        assert value == Decimal(obs["value_fixed"]).scaleb(-feed.decimals)


def test_replay_is_deterministic(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_json(capsys, "--replay", str(REPLAY)) == run_json(capsys, "--replay", str(REPLAY))


def test_replay_needs_no_api_keys(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("RUNPOD_API_KEY", "LAMBDA_API_KEY", "GCP_API_KEY", "TENSORDOCK_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    _, doc = run_json(capsys, "--replay", str(REPLAY))
    used = {s for obs in doc.values() for s in obs["sources_used"]}
    assert {"runpod", "lambda", "gcp", "tensordock"} <= used
    # And a real key in the environment does not break the match either.
    monkeypatch.setenv("RUNPOD_API_KEY", "rp-real-key")
    _, doc2 = run_json(capsys, "--replay", str(REPLAY))
    assert doc2 == doc


def test_staleness_judged_at_now(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = run_json(capsys, "--replay", str(REPLAY), "--now", "2027-01-01T00:00:00Z")
    assert code == 1
    for obs in doc.values():
        assert obs["value"] is None
        assert obs["reason"].startswith("insufficient_sources")
        assert {d["reason"] for d in obs["sources_dropped"]} == {"stale"}


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["feeds", "check", "--replay", str(REPLAY)]) == 0
    out = capsys.readouterr().out
    for feed in load_default_config().feeds:
        assert feed.id in out
    assert "used: " in out


def test_unrecorded_requests_fail_the_source_not_recorded(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "feeds.toml"
    config.write_text(
        """
[sources.vastai]
kind = "vastai"
options = { limit = 5 }   # a different query URL from the recorded one
[sources.oci]
kind = "oci"
[sources.akash]
kind = "akash"
[[feeds]]
id = "A100-SXM-80GB/USD-HR"
model = "A100-SXM-80GB"
kind = "USD-HR"
sources = ["vastai", "oci", "akash"]
"""
    )
    code, doc = run_json(capsys, "--replay", str(REPLAY), "--config", str(config))
    obs = doc["A100-SXM-80GB/USD-HR"]
    assert code == 1
    assert obs["value"] is None
    assert obs["sources_used"] == ["akash", "oci"]
    assert [(d["source"], d["reason"]) for d in obs["sources_dropped"]] == [
        ("vastai", "not_recorded")
    ]


def test_config_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[feeds]]\nid = "X"\n')
    assert main(["feeds", "check", "--config", str(bad), "--replay", str(REPLAY)]) == 2
    assert "bad.toml" in capsys.readouterr().err
    assert main(["feeds", "check", "--replay", str(tmp_path / "nothing")]) == 2


def test_verify(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["feeds", "verify", str(REPLAY)]) == 0
    assert "all hashes match" in capsys.readouterr().out
    copy = tmp_path / "copy"
    shutil.copytree(REPLAY, copy)
    victim = next((copy / "bodies").iterdir())
    victim.write_bytes(gzip.compress(b'{"forged": true}'))
    assert main(["feeds", "verify", str(copy)]) == 2


def _load_build_replay() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_replay", ROOT / "scripts" / "build_replay.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_replay_is_what_build_replay_builds(tmp_path: Path) -> None:
    build_replay = _load_build_replay()
    assert build_replay.main(["--out", str(tmp_path / "out")]) == 0
    built = sorted(p.relative_to(tmp_path / "out") for p in (tmp_path / "out").rglob("*"))
    committed = sorted(p.relative_to(REPLAY) for p in REPLAY.rglob("*"))
    assert built == committed
    for rel in built:
        if (REPLAY / rel).is_file():
            assert (REPLAY / rel).read_bytes() == (tmp_path / "out" / rel).read_bytes(), rel


def test_installed_entry_point() -> None:
    xon = Path(sys.executable).parent / "xon"
    cmd = [str(xon)] if xon.exists() else [sys.executable, "-m", "oracle.cli"]
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    proc = subprocess.run(
        [*cmd, "feeds", "check", "--replay", str(REPLAY), "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert "H100-SXM/USD-HR" in doc and doc["H100-SXM/USD-HR"]["value"] is not None
