"""The conformance runner: passes on the published files, fails on any single altered value."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aggregation.frost.vectors import check_document, main, parse_identifier

REPO = Path(__file__).resolve().parents[2]
RFC_FILE = REPO.parent / "shared" / "vectors" / "frost-secp256k1-sha256-rfc9591.json"
ZF_DIR = REPO / "tests" / "vectors" / "zf"
ZF_SIGNING = ZF_DIR / "vectors.json"
ZF_DKG = ZF_DIR / "vectors_dkg.reconstructed.json"

FILES = [
    pytest.param(
        RFC_FILE,
        id="rfc9591",
        marks=pytest.mark.skipif(not RFC_FILE.exists(), reason="shared/ not checked out"),
    ),
    pytest.param(ZF_SIGNING, id="zf-signing"),
    pytest.param(ZF_DKG, id="zf-dkg"),
]


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def _write(tmp_path: Path, doc: Any, name: str = "copy.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, (*path, i))
    else:
        yield path, node


def _altered(value: Any) -> Any:
    if isinstance(value, int):
        return value + 1
    if value and all(ch in "0123456789abcdef" for ch in value):
        return value[:-1] + ("1" if value[-1] != "1" else "2")
    return value + "x"


@pytest.mark.parametrize("path", FILES)
def test_runner_passes_on_published_file(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out
    assert "0 failed" in out


@pytest.mark.parametrize("path", FILES)
def test_every_single_altered_value_is_caught(path: Path, tmp_path: Path) -> None:
    original = _load(path)
    leaves = list(_leaves(original))
    assert len(leaves) > 30
    missed = []
    for where, value in leaves:
        doc = copy.deepcopy(original)
        node = doc
        for key in where[:-1]:
            node = node[key]
        node[where[-1]] = _altered(value)
        altered = _write(tmp_path, doc)
        if main([str(altered)]) == 0:
            missed.append(where)
    assert missed == []


def test_cli_entry_point_and_exit_status(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "aggregation.frost.vectors", str(ZF_SIGNING), str(ZF_DKG)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "PASS final signature" in ok.stdout
    assert "PASS proof_of_knowledge[1]" in ok.stdout
    doc = _load(ZF_SIGNING)
    doc["round_two_outputs"]["outputs"][0]["sig_share"] = "00" * 32
    bad = subprocess.run(
        [sys.executable, "-m", "aggregation.frost.vectors", str(_write(tmp_path, doc))],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert bad.returncode == 1
    assert "FAIL sig_share[1]" in bad.stdout


def test_zf_renamed_verifying_key_field(tmp_path: Path) -> None:
    # Newer ZF files call the group key "verifying_key_key"; same values otherwise.
    doc = _load(ZF_SIGNING)
    doc["inputs"]["verifying_key_key"] = doc["inputs"].pop("group_public_key")
    assert main([str(_write(tmp_path, doc))]) == 0


def test_zf_participants_objects_and_hex_identifiers(tmp_path: Path) -> None:
    # Older ZF shape: objects keyed by identifier; identifiers also as 32-byte hex scalars.
    doc = _load(ZF_SIGNING)
    inputs = doc["inputs"]
    inputs["participants"] = {
        str(e["identifier"]): {"participant_share": e["participant_share"]}
        for e in inputs.pop("participant_shares")
    }
    for section in ("round_one_outputs", "round_two_outputs"):
        outputs = doc[section].pop("outputs")
        doc[section]["participants"] = {
            f"{e['identifier']:064x}": {k: v for k, v in e.items() if k != "identifier"}
            for e in outputs
        }
    assert main([str(_write(tmp_path, doc))]) == 0


def test_identifier_parsing() -> None:
    assert parse_identifier(3) == 3
    assert parse_identifier("3") == 3
    assert parse_identifier("00" * 31 + "03") == 3
    for bad in (True, 0, "x", "-1", 1.5):
        with pytest.raises(ValueError):
            parse_identifier(bad)


def test_other_ciphersuite_is_refused() -> None:
    doc = _load(ZF_DKG)
    doc["config"]["hash"] = "KECCAK-256"
    doc["config"]["name"] = "FROST(secp256k1, KECCAK-256)"
    checks = check_document(doc)
    assert [c.name for c in checks if not c.ok] == ["ciphersuite"]


def test_malformed_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main([str(tmp_path / "missing.json")]) == 2
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    assert main([str(garbage)]) == 2
    assert main([str(_write(tmp_path, [1, 2, 3]))]) == 1
    assert main([str(_write(tmp_path, {"inputs": {}}))]) == 1
    out = capsys.readouterr().out
    assert "FAIL file structure" in out
