"""Whole-transaction gas of PRICES reports on a real anvil, and where one feed's gas goes.

    .venv/bin/python bench/gas.py             # 1, 2, 10 and 50 feeds, compact and ABI
    .venv/bin/python bench/gas.py --trace     # + an opcode breakdown of a 1-feed report

Deploys the suite with ``deploy_all`` on a fresh anvil (``--steps-tracing`` so that
``debug_traceTransaction`` returns opcodes), brings every ring slot to steady state (eight
50-feed reports), then posts reports signed by a Python FROST committee through
``PriceFeedStore.transmitCompact_14743166`` (the calldata the node sends) and through ABI
``transmit(bytes, bytes)``, and prints each receipt's gasUsed. The same figures are
asserted in ``contracts/test/PriceFeedStore.t.sol`` (1 feed ≤ 40,000 compact); this script
is the cross-check on a real node and the tool to see what a change costs.
"""

from __future__ import annotations

import argparse
import collections
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eth_account import Account  # noqa: E402
from web3 import Web3  # noqa: E402
from web3.types import RPCEndpoint  # noqa: E402

from aggregation.frost import sign_with_committee, trusted_dealer_keygen  # noqa: E402
from aggregation.report import PricesPayload, Report, ReportKind, signing_message  # noqa: E402
from contracts.deploy import CommitteeSpec, FeedSpec, contract_at, deploy_all  # noqa: E402
from contracts.encoding import compact_prices_calldata, transmit_signature  # noqa: E402
from oracle.chain.receivers import encode_transmit  # noqa: E402

# anvil's first development account (well-known mnemonic); never a real key.
ANVIL_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
FEEDS = 50
PRICE = 2_45678901  # $2.45678901 per GPU-hour, 8 decimals


class Bench:
    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        self.owner = Account.from_key(ANVIL_KEY_0)
        self.rng = random.Random(11)
        self.dealer = trusted_dealer_keygen(7, 5, self.rng.randbytes)
        key = self.dealer.public_key_package.chain_key
        members = tuple(Account.create().address for _ in range(7))
        # Realistic 20-character ids, like H100-SXM-80GB/USD-HR.
        self.names = [f"GPU-MODEL-{100 + i}/USD-HR" for i in range(FEEDS)]
        self.deployment = deploy_all(
            w3,
            self.owner,
            CommitteeSpec(key.x, key.parity, 5, members),
            tuple(FeedSpec(name) for name in self.names),
            uptime_capacity=2,
        )
        self.store = self.deployment.price_feed_store
        committee = contract_at(w3, "XonCommittee", self.deployment.committee)
        self.digest = bytes(committee.functions.configDigest().call())
        self.round = 0

    def signed(self, feeds: int, price: int) -> tuple[Report, bytes]:
        self.round += 1
        payload = PricesPayload(
            tuple(n.encode().ljust(32, b"\0") for n in self.names[:feeds]),
            tuple(price + i * 1_000_003 for i in range(feeds)),
        )
        now = int(self.w3.eth.get_block("latest")["timestamp"])
        report = Report(self.digest, 1, self.round, now, ReportKind.PRICES, payload.encode())
        message = signing_message(self.deployment.chain_id, self.store, report.encode())
        package = self.dealer.public_key_package
        signers = sorted(self.rng.sample(sorted(self.dealer.key_packages), package.threshold))
        signature = sign_with_committee(
            self.dealer.key_packages, package, signers, message, self.rng.randbytes
        )
        return report, transmit_signature(signature, package.chain_key.x)

    def send(self, data: bytes) -> tuple[int, bytes]:
        tx = self.w3.eth.send_transaction(
            {"from": self.owner.address, "to": self.store, "data": data, "gas": 2_000_000}
        )
        receipt = self.w3.eth.wait_for_transaction_receipt(tx)
        if receipt["status"] != 1:
            raise SystemExit(f"report reverted (tx {tx.hex()})")
        return int(receipt["gasUsed"]), bytes(tx)

    def post(self, feeds: int, compact: bool, price: int = PRICE) -> tuple[int, bytes, int]:
        report, signature = self.signed(feeds, price)
        if compact:
            data = compact_prices_calldata(report, signature)
        else:
            data = encode_transmit(report.encode(), signature)
        used, tx = self.send(data)
        return used, tx, len(data)


def breakdown(w3: Web3, tx: bytes) -> None:
    """Execution gas of one transaction by opcode group (precompiles at their own cost)."""
    trace: Any = w3.provider.make_request(
        RPCEndpoint("debug_traceTransaction"), ["0x" + tx.hex(), {"disableStack": True}]
    )
    logs = trace["result"]["structLogs"]
    if not logs:
        print("  (no opcode trace: anvil without --steps-tracing?)")
        return
    groups: collections.Counter[str] = collections.Counter()
    for i, step in enumerate(logs):
        if step["depth"] != 1:
            continue
        op = step["op"]
        cost = int(step["gasCost"])
        if op == "STATICCALL":
            # The step's cost includes the gas forwarded; what the call used is the drop in
            # gas between this step and the next one at the same depth.
            after = next(s for s in logs[i + 1 :] if s["depth"] == 1)
            cost = int(step["gas"]) - int(after["gas"])
            op = "STATICCALL (precompile)"
        if op.startswith(("PUSH", "DUP", "SWAP", "POP", "JUMP")):  # JUMPDEST included
            op = "stack and control flow"
        groups[op] += cost
    total = sum(groups.values())
    print(f"  execution {total} gas, by opcode:")
    for op, cost in groups.most_common():
        print(f"    {op:<26} {cost:>6}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", action="store_true", help="opcode breakdown of 1 feed")
    args = parser.parse_args()
    anvil = ROOT / "node_modules" / ".bin" / "anvil"
    if not anvil.exists():
        raise SystemExit("no anvil: run scripts/setup")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [str(anvil), "--port", str(port), "--silent", "--steps-tracing"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}"))
        for _ in range(200):
            if w3.is_connected():
                break
            time.sleep(0.05)
        bench = Bench(w3)
        print(f"anvil {w3.client_version}; {FEEDS} feeds registered; warming the rings ...")
        for _ in range(8):
            bench.post(FEEDS, compact=True, price=2_00000000)
        print(f"{'feeds':>5} {'path':<8} {'calldata':>9} {'gas':>8} {'per extra feed':>15}")
        for compact in (True, False):
            first = 0
            for feeds in (1, 2, 10, FEEDS):
                used, tx, size = bench.post(feeds, compact)
                if feeds == 1:
                    first, first_tx = used, tx
                extra = f"{(used - first) / (feeds - 1):.0f}" if feeds > 1 else ""
                path = "compact" if compact else "abi"
                print(f"{feeds:>5} {path:<8} {size:>8}B {used:>8} {extra:>15}")
            if args.trace:
                breakdown(w3, first_tx)
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
