#!/usr/bin/env python3
"""Export forge build output for every contract under contracts/src to contracts/artifacts/.

The committed artifacts (ABI + creation and runtime bytecode) are what the Python
package deploys, so a user needs no Solidity toolchain to run a node. ``--check``
compares instead of writing and exits 1 when a committed artifact is missing, extra
or stale (the test suite runs it after ``forge build``).

Usage: scripts/export_artifacts.py [--check]   (run ``forge build --offline`` first)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "contracts" / "src"
OUT = ROOT / "contracts" / "out"
ARTIFACTS = ROOT / "contracts" / "artifacts"


def collect() -> dict[str, str]:
    """Artifact file name -> canonical JSON text, for every contract defined in src/."""
    result: dict[str, str] = {}
    for source in sorted(SRC.rglob("*.sol")):
        build_dir = OUT / source.name
        if not build_dir.is_dir():
            raise SystemExit(f"no build output for {source}: run `forge build --offline` first")
        for built in sorted(build_dir.glob("*.json")):
            data = json.loads(built.read_text())
            name = built.stem
            bytecode = data["bytecode"]["object"]
            if "__$" in bytecode:
                raise SystemExit(f"{name} needs library linking; make library functions internal")
            artifact = {
                "contractName": name,
                "sourceName": str(source.relative_to(ROOT / "contracts")),
                "abi": data["abi"],
                "bytecode": bytecode,
                "deployedBytecode": data["deployedBytecode"]["object"],
            }
            if name in result:
                raise SystemExit(f"two contracts named {name}; artifact names must be unique")
            result[f"{name}.json"] = json.dumps(artifact, indent=1, sort_keys=True) + "\n"
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    wanted = collect()
    present = {p.name: p.read_text() for p in ARTIFACTS.glob("*.json")}
    stale = sorted(n for n in wanted if present.get(n) != wanted[n])
    extra = sorted(set(present) - set(wanted))
    if args.check:
        if stale or extra:
            print("contracts/artifacts is out of date; run scripts/export_artifacts.py")
            for name in stale:
                print(f"  stale or missing: {name}")
            for name in extra:
                print(f"  no longer built: {name}")
            return 1
        print(f"contracts/artifacts: {len(wanted)} artifacts current")
        return 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name in extra:
        (ARTIFACTS / name).unlink()
    for name in stale:
        (ARTIFACTS / name).write_text(wanted[name])
    print(f"contracts/artifacts: wrote {len(stale)}, removed {len(extra)}, {len(wanted)} total")
    return 0


if __name__ == "__main__":
    sys.exit(main())
