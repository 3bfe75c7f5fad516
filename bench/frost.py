"""FROST(secp256k1, SHA-256) timings: round 1, round 2, aggregate, verify.

    .venv/bin/python bench/frost.py            # 7-of-10 and 67-of-100, median of 25 runs
    .venv/bin/python bench/frost.py --big      # adds 667-of-1000 (fewer runs, sampled signers)
    .venv/bin/python bench/frost.py --profile 67-of-100   # cProfile of one round-2 signer

Round 1 and round 2 are per signer; round 2 includes the signer's own derivation of the
session values (binding factors, group commitment, challenge), as in a real deployment
where each signer computes them itself. Aggregate is the coordinator's whole job
(session values + sum + signature check). Verify is one full signature verification.
The ZcashFoundation Rust figures (Ryzen 5900X) are printed for comparison; they were taken
on other hardware, so the ratio is indicative only.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import secrets
import socket
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aggregation.frost import (
    DealerOutput,
    SigningContext,
    SigningPackage,
    aggregate,
    commit,
    sign,
    sign_with_committee,
    trusted_dealer_keygen,
    verify,
)

ROOT = Path(__file__).resolve().parent.parent

# ZcashFoundation frost-secp256k1 on a Ryzen 5900X: (round-2 ms, aggregate ms).
ZF_REFERENCE: dict[tuple[int, int], tuple[float, float]] = {
    (7, 10): (0.48, 0.52),
    (67, 100): (4.41, 3.82),
}


class OnchainGas:
    """On-chain verification gas of a t-of-n signature, measured on a real anvil.

    Sends ``FrostVerifierHarness.verify`` as a transaction and reports the receipt's
    gasUsed and the execution part of it (gasUsed minus the 21,000 base and the calldata
    cost), so the figure includes the harness's ABI decoding. The library call alone is
    asserted (≤ 6,500) in contracts/test/FrostVerifier.t.sol. Without anvil (no
    ``scripts/setup``) the column says so instead of guessing.
    """

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._harness: Any = None
        self._w3: Any = None
        self.error = ""

    def __enter__(self) -> OnchainGas:
        anvil = ROOT / "node_modules" / ".bin" / "anvil"
        if not anvil.exists():
            self.error = "no anvil (run scripts/setup)"
            return self
        from web3 import Web3

        from contracts.artifacts import load_artifact

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self._process = subprocess.Popen(
            [str(anvil), "--port", str(port), "--silent"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}"))
        for _ in range(200):
            if self._w3.is_connected():
                break
            time.sleep(0.05)
        artifact = load_artifact("FrostVerifierHarness")
        factory = self._w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        tx = factory.constructor().transact({"from": self._w3.eth.accounts[0]})
        address = self._w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
        self._harness = self._w3.eth.contract(address=address, abi=artifact.abi)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)

    def measure(self, t: int, n: int) -> str:
        if self._harness is None:
            return self.error
        from contracts.encoding import onchain_signature

        rng = secrets.token_bytes
        dealer = trusted_dealer_keygen(n, t, rng)
        key = dealer.public_key_package.chain_key
        message = rng(32)
        signature = sign_with_committee(
            dealer.key_packages, dealer.public_key_package, list(range(1, t + 1)), message, rng
        )
        call = self._harness.functions.verify(
            key.x, key.parity, message, onchain_signature(signature)
        )
        assert call.call(), "the harness rejected a valid signature"
        tx = call.transact({"from": self._w3.eth.accounts[0]})
        receipt = self._w3.eth.wait_for_transaction_receipt(tx)
        data = bytes(self._w3.eth.get_transaction(tx)["input"])
        intrinsic = 21_000 + sum(16 if b else 4 for b in data)
        used = int(receipt["gasUsed"])
        return f"{used} tx / {used - intrinsic} exec"


@dataclass
class Row:
    t: int
    n: int
    runs: int
    sampled: int
    round1: float
    round2: float
    aggregate: float
    verify: float


def measure(t: int, n: int, runs: int, sample: int | None, rng: Callable[[int], bytes]) -> Row:
    dealer: DealerOutput = trusted_dealer_keygen(n, t, rng)
    public = dealer.public_key_package
    r1: list[float] = []
    r2: list[float] = []
    agg: list[float] = []
    ver: list[float] = []
    order = random.Random(1)
    for run in range(runs):
        signers = sorted(order.sample(range(1, n + 1), t))
        message = run.to_bytes(32, "big")
        committed = []
        for i in signers:
            start = time.perf_counter()
            committed.append(commit(dealer.key_packages[i], rng))
            r1.append((time.perf_counter() - start) * 1000)
        package = SigningPackage(tuple(c for _, c in committed), message)
        timed = set(order.sample(signers, sample)) if sample else set(signers)
        shares = []
        shared_context = SigningContext(package, public.group_key)
        for nonces, c in committed:
            kp = dealer.key_packages[c.identifier]
            if c.identifier in timed:
                start = time.perf_counter()
                shares.append(sign(package, nonces, kp))
                r2.append((time.perf_counter() - start) * 1000)
            else:  # untimed signers reuse one context to keep --big runs short
                shares.append(sign(package, nonces, kp, context=shared_context))
        start = time.perf_counter()
        signature = aggregate(package, shares, public)
        agg.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        ok = verify(public.group_key, message, signature)
        ver.append((time.perf_counter() - start) * 1000)
        assert ok
    return Row(
        t=t,
        n=n,
        runs=runs,
        sampled=sample or t,
        round1=statistics.median(r1),
        round2=statistics.median(r2),
        aggregate=statistics.median(agg),
        verify=statistics.median(ver),
    )


def print_table(rows: list[Row], gas: Callable[[int, int], str]) -> None:
    header = (
        f"{'committee':>12} {'runs':>5} {'round1 ms/signer':>17} {'round2 ms/signer':>17} "
        f"{'aggregate ms':>13} {'verify ms':>10} {'ZF r2/agg ms':>13} {'x ZF r2/agg':>12}  "
        "on-chain verify gas"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        ref = ZF_REFERENCE.get((r.t, r.n))
        ref_text = f"{ref[0]:.2f}/{ref[1]:.2f}" if ref else "-"
        ratio = f"{r.round2 / ref[0]:.2f}/{r.aggregate / ref[1]:.2f}" if ref else "-"
        runs = f"{r.runs}" if r.sampled == r.t else f"{r.runs}*"
        print(
            f"{f'{r.t}-of-{r.n}':>12} {runs:>5} {r.round1:>17.3f} {r.round2:>17.3f} "
            f"{r.aggregate:>13.3f} {r.verify:>10.3f} {ref_text:>13} {ratio:>12}  "
            f"{gas(r.t, r.n)}"
        )
    if any(r.sampled != r.t for r in rows):
        print("* round 2 timed on a random sample of signers per run (see --help)")


def profile_round2(t: int, n: int) -> None:
    """cProfile of round 2 for all t signers."""
    rng = secrets.token_bytes
    dealer = trusted_dealer_keygen(n, t, rng)
    committed = [commit(dealer.key_packages[i], rng) for i in range(1, t + 1)]
    package = SigningPackage(tuple(c for _, c in committed), b"\x00" * 32)
    profiler = cProfile.Profile()
    profiler.enable()
    for nonces, c in committed:  # every signer, each deriving the session values itself
        sign(package, nonces, dealer.key_packages[c.identifier])
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", action="store_true", help="also run 667-of-1000")
    parser.add_argument("--runs", type=int, default=25, help="runs per committee (>= 20)")
    parser.add_argument("--big-runs", type=int, default=5, help="runs for 667-of-1000")
    parser.add_argument(
        "--big-sample", type=int, default=25, help="signers timed in round 2 per --big run"
    )
    parser.add_argument("--profile", metavar="T-of-N", help="profile one round-2 signer")
    args = parser.parse_args()
    if args.profile:
        t, n = (int(x) for x in args.profile.split("-of-"))
        profile_round2(t, n)
        return
    rng = secrets.token_bytes
    rows = [measure(7, 10, args.runs, None, rng), measure(67, 100, args.runs, None, rng)]
    if args.big:
        rows.append(measure(667, 1000, args.big_runs, args.big_sample, rng))
    with OnchainGas() as onchain:
        print_table(rows, onchain.measure)
    if args.big:
        print(
            f"667-of-1000: median of {args.big_runs} runs; round 2 timed on "
            f"{args.big_sample} random signers per run"
        )


if __name__ == "__main__":
    main()
