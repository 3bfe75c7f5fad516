"""The DKG over a real mosquitto: every member its own MQTT client, the resulting shares in
keystores, and a threshold signature under the group key verified on-chain (anvil)."""

from __future__ import annotations

import asyncio
import os
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from aggregation.frost import KeyPackage, PublicKeyPackage, sign_with_committee, verify
from contracts.artifacts import load_artifact
from contracts.encoding import onchain_signature
from oracle.dkg_cli import committee_of, read_roster, share_of
from oracle.dkg_runner import run_dkg
from oracle.dkg_session import DkgResult, DkgSession, DkgSessionConfig
from oracle.identity import IdentityKey, Roster
from oracle.keystore import (
    INSECURE_FAST_KDF,
    CommitteeParams,
    Passphrase,
    read_committee,
    read_frost_share,
    write_committee,
    write_frost_share,
    write_identity_keystore,
)
from oracle.transport import Backoff, MqttSettings, MqttTransport
from tests.conftest import ROOT, Anvil, Broker

pytestmark = pytest.mark.integration

NET = "dkg-it"
PASSWORD = "dkg integration test"


@pytest.fixture(scope="module")
def harness(anvil_module: Anvil) -> Iterator[Any]:
    w3 = Web3(Web3.HTTPProvider(anvil_module.url))
    artifact = load_artifact("FrostVerifierHarness")
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    tx = factory.constructor().transact({"from": w3.eth.accounts[0]})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    yield w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi)


def settings(broker: Broker) -> MqttSettings:
    return MqttSettings(
        host=broker.host,
        port=broker.port,
        keepalive=5,
        timeout=2.0,
        backoff=Backoff(initial=0.05, maximum=0.3),
        close_flush_timeout=0.5,
    )


def verifies_on_chain(
    harness: Any, public: PublicKeyPackage, packages: dict[int, KeyPackage], seed: int
) -> bool:
    """Sign a random 32-byte message with the given shares; check it with FrostVerifier."""
    rng = random.Random(seed)
    message = rng.randbytes(32)
    signature = sign_with_committee(packages, public, sorted(packages), message, rng.randbytes)
    assert verify(public.group_key, message, signature)
    key = public.chain_key
    sig96 = onchain_signature(signature)
    tampered = bytes([message[0] ^ 1]) + message[1:]
    assert not harness.functions.verify(key.x, key.parity, tampered, sig96).call()
    return bool(harness.functions.verify(key.x, key.parity, message, sig96).call())


async def test_five_members_over_mqtt_produce_a_key_that_verifies_on_chain(
    mosquitto: Broker, harness: Any, tmp_path: Path
) -> None:
    n, t = 5, 3
    keys = [IdentityKey(b"\x05" + random.Random(i).randbytes(31)) for i in range(n)]
    roster = Roster.of(*keys)
    config = DkgSessionConfig(
        network=NET,
        roster=roster,
        threshold=t,
        label=b"integration-1",
        timeout=20.0,
        resend_interval=0.3,
    )

    async def member(key: IdentityKey, delay: float) -> DkgResult:
        await asyncio.sleep(delay)  # members come up one after another, as in real life
        session = DkgSession(config, key.node_id, random.Random(key.node_id).randbytes)
        async with MqttTransport(
            settings(mosquitto), network=NET, roster=roster, identity=key
        ) as transport:
            return await run_dkg(transport, session, linger=0.5)

    async with asyncio.timeout(30):
        results = await asyncio.gather(*(member(k, 0.1 * i) for i, k in enumerate(keys)))

    group_keys = {r.group_key.encode() for r in results}
    assert len(group_keys) == 1
    assert sorted(r.identifier for r in results) == list(range(1, n + 1))
    for key, result in zip(keys, results, strict=True):
        assert result.node_ids[result.identifier] == key.node_id
    public = results[0].public_key_package
    assert all(r.public_key_package.verifying_shares == public.verifying_shares for r in results)

    # Each member's share goes to its keystore and loads back intact.
    passphrase = Passphrase(PASSWORD)
    loaded = {}
    for result in results:
        path = tmp_path / f"share-{result.identifier}.json"
        write_frost_share(path, share_of(result, 7), passphrase, kdf=INSECURE_FAST_KDF)
        share = read_frost_share(path, passphrase)
        assert share.key_package == result.key_package
        assert share.metadata.key_epoch == 7 and share.public.group_key == public.group_key
        loaded[result.identifier] = share.key_package
    committee = committee_of(results[0], roster, CommitteeParams(n=n, f=1, t=t), 7)
    write_committee(tmp_path / "committee.json", committee)
    assert read_committee(tmp_path / "committee.json").public_key_package == public

    # A t-subset of the loaded shares signs; the contract accepts it (and no fewer signers).
    subset = {i: loaded[i] for i in random.Random(1).sample(sorted(loaded), t)}
    assert await asyncio.to_thread(verifies_on_chain, harness, public, subset, 2)


async def test_xon_dkg_cli_three_members(mosquitto: Broker, harness: Any, tmp_path: Path) -> None:
    xon = Path(sys.executable).parent / "xon"
    if not xon.exists():
        xon = ROOT / ".venv" / "bin" / "xon"
    env = {**os.environ, "XON_DKG_TEST_PW": PASSWORD}
    passphrase = Passphrase(PASSWORD)
    identities = []
    for i in range(3):
        path = tmp_path / f"identity-{i}.json"
        await asyncio.to_thread(
            write_identity_keystore,
            path,
            IdentityKey.generate(),
            passphrase,
            kdf=INSECURE_FAST_KDF,
        )
        identities.append(path)

    async def xon_run(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            str(xon),
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await process.communicate()
        except asyncio.CancelledError:
            process.kill()
            await process.wait()
            raise
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    roster_path = tmp_path / "roster.json"
    async with asyncio.timeout(30):
        code, out, err = await xon_run(
            "dkg",
            "roster",
            "--identity",
            *map(str, identities),
            "--password-env",
            "XON_DKG_TEST_PW",
            "--out",
            str(roster_path),
        )
        assert code == 0, err
        roster = read_roster(roster_path)
        assert len(roster) == 3 and all(node_id in out for node_id in roster.node_ids)

        common = [
            "dkg",
            "--committee",
            str(roster_path),
            "--broker",
            f"{mosquitto.host}:{mosquitto.port}",
            "--network",
            NET,
            "--threshold",
            "2",
            "--session",
            "cli-e2e",
            "--key-epoch",
            "1",
            "--password-env",
            "XON_DKG_TEST_PW",
            "--insecure-fast-kdf",
            "--timeout",
            "25",
        ]
        runs = await asyncio.gather(
            *(
                xon_run(
                    *common,
                    "--identity",
                    str(path),
                    "--out",
                    str(tmp_path / f"share-{i}.json"),
                    "--committee-out",
                    str(tmp_path / f"committee-{i}.json"),
                )
                for i, path in enumerate(identities)
            )
        )
    for code, _, err in runs:
        assert code == 0, err
    printed = {line for _, out, _ in runs for line in out.splitlines() if "group key" in line}
    assert len(printed) == 1

    committees = [read_committee(tmp_path / f"committee-{i}.json") for i in range(3)]
    assert all(c == committees[0] for c in committees)
    committee = committees[0]
    assert committee.key_epoch == 1 and committee.params == CommitteeParams(n=3, f=0, t=2)
    assert f"0x{committee.chain_key.compressed.hex()}" in printed.pop()
    shares = [read_frost_share(tmp_path / f"share-{i}.json", passphrase) for i in range(3)]
    assert sorted(s.metadata.identifier for s in shares) == [1, 2, 3]
    for share in shares:
        assert share.public.group_key == committee.group_key
        assert committee.node_ids[share.metadata.identifier] == share.metadata.node_id
    packages = {s.metadata.identifier: s.key_package for s in shares[:2]}
    assert await asyncio.to_thread(
        verifies_on_chain, harness, committee.public_key_package, packages, 3
    )

    # Running again onto the same files is refused before anything happens.
    code, _, err = await xon_run(
        *common, "--identity", str(identities[0]), "--out", str(tmp_path / "share-0.json")
    )
    assert code == 2 and "exists" in err
