"""Load the committed build artifacts (ABI + bytecode) from ``contracts/artifacts/``.

The artifacts are produced by ``scripts/export_artifacts.py`` from ``forge build`` and
committed, so running a node or deploying needs no Solidity toolchain; a test fails if
they fall behind the sources.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from contracts.errors import ArtifactError


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    deployed_bytecode: bytes


def _hex(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise ArtifactError(f"{what} is not a hex string")
    try:
        return bytes.fromhex(text.removeprefix("0x"))
    except ValueError as exc:
        raise ArtifactError(f"{what} is not valid hex") from exc


@cache
def load_artifact(name: str) -> Artifact:
    """The artifact of contract ``name`` (e.g. ``"PriceFeedStore"``)."""
    resource = resources.files("contracts").joinpath("artifacts", f"{name}.json")
    try:
        data = json.loads(resource.read_text())
    except FileNotFoundError as exc:
        raise ArtifactError(f"no artifact for contract {name!r}") from exc
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"artifact {name!r} is not JSON: {exc}") from exc
    abi = data.get("abi")
    if not isinstance(abi, list):
        raise ArtifactError(f"artifact {name!r} has no ABI list")
    return Artifact(
        name=name,
        abi=abi,
        bytecode=_hex(data.get("bytecode"), f"{name}.bytecode"),
        deployed_bytecode=_hex(data.get("deployedBytecode"), f"{name}.deployedBytecode"),
    )


def artifact_names() -> list[str]:
    folder = resources.files("contracts").joinpath("artifacts")
    names = (p.name for p in folder.iterdir())
    return sorted(n.removesuffix(".json") for n in names if n.endswith(".json"))
