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


@cache
def _error_table() -> dict[bytes, tuple[str, list[str]]]:
    """4-byte selector -> (error name, argument types), over every committed artifact."""
    from eth_utils.crypto import keccak

    table: dict[bytes, tuple[str, list[str]]] = {}
    for name in artifact_names():
        for entry in load_artifact(name).abi:
            if entry.get("type") != "error":
                continue
            types = [str(i["type"]) for i in entry.get("inputs", [])]
            signature = f"{entry['name']}({','.join(types)})"
            table[keccak(signature.encode())[:4]] = (str(entry["name"]), types)
    return table


def decode_revert(data: bytes | str) -> str:
    """A revert's return data as ``Name(arg, ...)`` using the contracts' custom errors.

    Unknown selectors come back as hex, so an operator always sees something exact.
    """
    from eth_abi.abi import decode as abi_decode

    raw = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else data
    if len(raw) < 4:
        return f"revert(0x{raw.hex()})"
    known = _error_table().get(raw[:4])
    if known is None:
        if raw[:4] == bytes.fromhex("08c379a0"):  # Error(string)
            return f"Error({abi_decode(['string'], raw[4:])[0]!r})"
        return f"revert(0x{raw.hex()})"
    name, types = known
    try:
        args = abi_decode(types, raw[4:])
    except Exception:
        return f"{name}(<undecodable 0x{raw[4:].hex()}>)"
    shown = ", ".join(f"0x{a.hex()}" if isinstance(a, bytes) else str(a) for a in args)
    return f"{name}({shown})"
