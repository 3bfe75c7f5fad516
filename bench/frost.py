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
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from aggregation.frost import (
    DealerOutput,
    SigningContext,
    SigningPackage,
    aggregate,
    commit,
    sign,
    trusted_dealer_keygen,
    verify,
)

# ZcashFoundation frost-secp256k1 on a Ryzen 5900X: (round-2 ms, aggregate ms).
ZF_REFERENCE: dict[tuple[int, int], tuple[float, float]] = {
    (7, 10): (0.48, 0.52),
    (67, 100): (4.41, 3.82),
}


def onchain_gas(t: int, n: int) -> str:
    """Hook for the on-chain verification gas of a t-of-n signature (wired by the lead from
    the forge gas report). Verification cost on-chain does not depend on t or n."""
    del t, n
    return "see forge"


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


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'committee':>12} {'runs':>5} {'round1 ms/signer':>17} {'round2 ms/signer':>17} "
        f"{'aggregate ms':>13} {'verify ms':>10} {'ZF r2/agg ms':>13} {'x ZF r2/agg':>12}  gas"
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
            f"{onchain_gas(r.t, r.n)}"
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
    print_table(rows)
    if args.big:
        print(
            f"667-of-1000: median of {args.big_runs} runs; round 2 timed on "
            f"{args.big_sample} random signers per run"
        )


if __name__ == "__main__":
    main()
