"""``xon contracts deploy`` against a real anvil, with keys made by ``xon keys``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from web3 import Web3

from contracts.deploy import Deployment, contract_at
from feeds.config import load_default_config
from oracle.cli import main
from oracle.keystore import read_committee
from tests.conftest import Anvil

pytestmark = pytest.mark.integration


def test_deploy_writes_a_usable_deployment(
    anvil: Anvil,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("XON_TEST_PW", "correct horse battery staple")
    pw = ["--password-env", "XON_TEST_PW", "--insecure-fast-kdf"]
    assert main(["keys", "new", "--out", str(tmp_path / "owner.json"), *pw]) == 0
    owner = capsys.readouterr().out.strip().split()[-1]
    assert main(["keys", "dealer", "--n", "4", "--t", "3", "--out", str(tmp_path / "k"), *pw]) == 0
    capsys.readouterr()

    w3 = Web3(Web3.HTTPProvider(anvil.url))
    w3.provider.make_request("anvil_setBalance", [owner, hex(10**20)])  # type: ignore[arg-type]
    out = tmp_path / "deployment.json"
    args = ["contracts", "deploy", "--rpc", anvil.url, "--key-file", str(tmp_path / "owner.json")]
    args += ["--password-env", "XON_TEST_PW", "--committee", str(tmp_path / "k/committee.json")]
    assert main([*args, "--out", str(out)]) == 0
    assert "deploying: XonCommittee" in capsys.readouterr().err

    deployment = Deployment.from_json(out.read_text())
    assert deployment.owner == owner
    assert deployment.chain_id == anvil.chain_id
    committee = read_committee(tmp_path / "k/committee.json")
    on_chain = contract_at(w3, "XonCommittee", deployment.committee)
    assert tuple(on_chain.functions.groupKey().call()) == (
        committee.chain_key.x,
        committee.chain_key.parity,
    )
    assert "0x" + bytes(on_chain.functions.configDigest().call()).hex() == deployment.config_digest
    names = [feed.id for feed in load_default_config().feeds]
    assert sorted(deployment.feed_proxies) == sorted(names)
    for name, proxy in deployment.feed_proxies.items():
        assert (
            contract_at(w3, "FeedProxy", proxy).functions.description().call().endswith(f"({name})")
        )
    assert json.loads(out.read_text())["format"] == "xon-deployment/1"

    # Refuses to overwrite, and says why on a wrong passphrase.
    assert main([*args, "--out", str(out)]) == 2
    monkeypatch.setenv("XON_TEST_PW", "wrong")
    assert main([*args, "--out", str(tmp_path / "other.json")]) == 2
    assert "passphrase" in capsys.readouterr().err.lower()
