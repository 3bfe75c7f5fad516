"""``xon node run``: refusing to start is exit 2 with a one-line reason on stderr.

(A clean SIGTERM shutdown with exit 0 and a SIGKILL/restart of the real command are in
tests/integration/test_node_mqtt_crash.py.)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from oracle.cli import main
from oracle.keystore import (
    INSECURE_FAST_KDF,
    Passphrase,
    committee_params,
    deal_committee,
    write_committee,
    write_frost_share,
    write_identity_keystore,
)
from oracle.node_cli import run_node
from oracle.settings import load_settings

TOML = """
network = "clitest"
[broker]
port = 1
[keys]
identity = "keys/node-1/identity.json"
frost_share = "keys/node-1/frost-share.json"
committee = "keys/committee.json"
passphrase_env = "XON_CLI_TEST_PASSPHRASE"
[store]
path = "state/node.sqlite"
[feeds]
replay_dir = "{replay}"
[chain]
chain_id = 1
verifying_contract = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
config_digest = "0x{digest}"
"""


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    dealt = deal_committee(committee_params(4), network="clitest")
    passphrase = Passphrase("right")
    keys = tmp_path / "keys"
    keys.mkdir()
    member = dealt.members[0]
    (keys / "node-1").mkdir()
    write_identity_keystore(
        keys / "node-1" / "identity.json", member.identity, passphrase, kdf=INSECURE_FAST_KDF
    )
    write_frost_share(
        keys / "node-1" / "frost-share.json", member.share, passphrase, kdf=INSECURE_FAST_KDF
    )
    write_committee(keys / "committee.json", dealt.committee)
    replay = Path(__file__).resolve().parents[2] / "feeds" / "replay" / "default"
    (tmp_path / "node.toml").write_text(TOML.format(replay=replay, digest="cd" * 32))
    return tmp_path


def test_missing_config_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["node", "run", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "cannot read node config" in capsys.readouterr().err


def test_invalid_settings_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "node.toml").write_text('network = "x"\n[timing]\ndelta_round = -1\n')
    assert main(["node", "run", "--config", str(tmp_path / "node.toml")]) == 2
    err = capsys.readouterr().err
    assert "timing.delta_round" in err and "keys: Field required" in err


def test_a_wrong_passphrase_is_refused_before_anything_runs(
    node_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XON_CLI_TEST_PASSPHRASE", "wrong")
    assert main(["node", "run", "--config", str(node_dir / "node.toml")]) == 2
    assert "xon node run:" in capsys.readouterr().err
    assert not (node_dir / "state" / "node.sqlite").exists()


def test_run_node_stops_cleanly_when_asked(node_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No broker listens on port 1: the node starts anyway (it reconnects in the background)
    # and a stop request ends it with exit 0, leaving a usable store behind.
    monkeypatch.setenv("XON_CLI_TEST_PASSPHRASE", "right")
    settings = load_settings(node_dir / "node.toml")

    async def run_briefly() -> int:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(1.0, stop.set)
        return await run_node(settings, stop)

    assert asyncio.run(run_briefly()) == 0
    assert (node_dir / "state" / "node.sqlite").exists()
