"""Node settings: the TOML format, env overrides, clear errors, and what they build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aggregation.report import signing_message
from feeds.config import load_default_config
from oracle.errors import KeystoreError
from oracle.keystore import (
    INSECURE_FAST_KDF,
    Passphrase,
    committee_params,
    deal_committee,
    write_committee,
    write_frost_share,
    write_identity_keystore,
)
from oracle.node import build_protocol_config, load_setup, mqtt_settings
from oracle.settings import NodeSettings, SettingsError, load_settings

DIGEST = "0x" + "ab" * 32
CONTRACT = "0x5fbdb2315678afecb367f032d93f642f64180aa3"

MINIMAL = f"""
network = "testnet"

[keys]
identity = "node-1/identity.json"
frost_share = "node-1/frost-share.json"
committee = "committee.json"
passphrase_env = "XON_TEST_PASSPHRASE"

[store]
path = "state/node.sqlite"

[chain]
chain_id = 31337
verifying_contract = "{CONTRACT}"
config_digest = "{DIGEST}"
"""


def write(tmp_path: Path, text: str, name: str = "node.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("XON_"):
            monkeypatch.delenv(name)


def test_minimal_file_gets_defaults_and_paths_relative_to_the_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL))
    assert settings.network == "testnet"
    assert settings.broker.host == "127.0.0.1" and settings.broker.port == 1883
    assert not settings.broker.tls
    assert settings.keys.identity == tmp_path.resolve() / "node-1/identity.json"
    assert settings.store.path == tmp_path.resolve() / "state/node.sqlite"
    assert settings.feeds.live and settings.observation_refresh_s == 30.0
    assert settings.timing.to_timing().delta_round == 5.0
    assert settings.protocol.commitment_batch == 16


def test_env_overrides_win_over_the_file_in_nested_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, MINIMAL + "\n[broker]\nport = 1884\nhost = 'broker.local'\n")
    monkeypatch.setenv("XON_BROKER__PORT", "1999")
    monkeypatch.setenv("XON_TIMING__DELTA_ROUND", "2.5")
    monkeypatch.setenv("XON_FEEDS__REPLAY_DIR", "recording")
    settings = load_settings(path)
    assert settings.broker.port == 1999
    assert settings.broker.host == "broker.local"  # the rest of the table stays
    assert settings.timing.delta_round == 2.5
    assert settings.feeds.replay_dir == tmp_path.resolve() / "recording"
    # Replay re-stamps the same values every round: the refresh follows ΔRound.
    assert settings.observation_refresh_s == 2.5


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("\n[broker]\nprot = 1\n", "broker.prot: Extra inputs are not permitted"),
        ("\n[broker]\nport = 0\n", "broker.port"),
        ("\n[timing]\ndelta_grace = 6.0\n", "delta_grace must be shorter than delta_round"),
        ("\n[timing]\ndelta_progress = 3.0\n", "delta_progress must exceed"),
        ("\n[broker]\nca_file = 'ca.pem'\n", "ca_file is set but tls = false"),
        ("\n[broker]\npassword_env = 'PW'\n", "password_env needs a username"),
        ("\n[protocol]\ncommitment_low_water = 16\n", "commitment_low_water must be below"),
        ("\n[feeds]\nreplay_now = '2026-10-12T12:00:00Z'\n", "replay_now needs replay_dir"),
        ("\n[feeds]\nheartbeat_s = 0\n", "feeds.heartbeat_s"),
        ("\nlog_level = 'LOUD'\n", "log_level"),
    ],
)
def test_invalid_values_name_the_key(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        load_settings(write(tmp_path, MINIMAL + extra))


def test_structural_errors_are_listed_together(tmp_path: Path) -> None:
    text = MINIMAL.replace(f'config_digest = "{DIGEST}"', 'config_digest = "0x1234"')
    text = text.replace('network = "testnet"', 'network = "Not Valid"')
    text = text.replace('passphrase_env = "XON_TEST_PASSPHRASE"', "")
    with pytest.raises(SettingsError) as info:
        load_settings(write(tmp_path, text))
    message = str(info.value)
    assert "network: invalid network id" in message
    assert "chain.config_digest: a 32-byte value must be 0x followed by 64 hex digits" in message
    assert "keys: set exactly one of passphrase_env and passphrase_file" in message


def test_chain_needs_a_deployment_or_all_three_values(tmp_path: Path) -> None:
    text = MINIMAL.replace("chain_id = 31337\n", "")
    with pytest.raises(SettingsError, match="chain_id, verifying_contract and config_digest"):
        load_settings(write(tmp_path, text))
    both = MINIMAL.replace("[chain]\n", "[chain]\ndeployment = 'deployment.json'\n")
    with pytest.raises(SettingsError, match="either deployment or"):
        load_settings(write(tmp_path, both))


def test_unreadable_or_broken_files_are_settings_errors(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read node config"):
        load_settings(tmp_path / "missing.toml")
    with pytest.raises(SettingsError, match="invalid TOML"):
        load_settings(write(tmp_path, "network = \n"))


def test_the_documented_example_parses(tmp_path: Path) -> None:
    import oracle.settings

    doc = oracle.settings.__doc__ or ""
    example = doc.split("required)::\n", 1)[1].split("\nEverything in", 1)[0]
    lines = []
    for indented in example.splitlines():
        line = indented[4:]
        # The example names a deployment file; use the commented-out explicit values.
        if line.startswith("deployment ="):
            continue
        if line.startswith(("# chain_id", "# verifying_contract", "# config_digest")):
            line = line[2:]
        lines.append(line)
    text = "\n".join(lines).replace("0x…(32 bytes)", DIGEST)
    settings = load_settings(write(tmp_path, text))
    assert settings.feeds.heartbeat_s == 3600 and settings.broker.username == "node-1"
    assert settings.chain.chain_id == 31337
    assert settings.feeds.replay_dir == tmp_path.resolve() / "recording"


# -- what the settings build -------------------------------------------------------------
PASSWORD = "settings test"


@pytest.fixture(scope="module")
def dealt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-member committee on disk, as `xon keys dealer` writes it."""
    root = tmp_path_factory.mktemp("keys")
    dealt = deal_committee(committee_params(4), network="testnet")
    passphrase = Passphrase(PASSWORD)
    for member in dealt.members:
        directory = root / f"node-{member.share.metadata.identifier}"
        directory.mkdir()
        write_identity_keystore(
            directory / "identity.json", member.identity, passphrase, kdf=INSECURE_FAST_KDF
        )
        write_frost_share(
            directory / "frost-share.json", member.share, passphrase, kdf=INSECURE_FAST_KDF
        )
    write_committee(root / "committee.json", dealt.committee)
    return root


def settings_for(root: Path, tmp_path: Path, extra: str = "", node: int = 1) -> NodeSettings:
    text = MINIMAL.replace("node-1/", f"{root}/node-{node}/").replace(
        '"committee.json"', f'"{root}/committee.json"'
    )
    return load_settings(write(tmp_path, text + extra))


def test_load_setup_decrypts_checks_and_builds_the_protocol_config(
    dealt: Path, tmp_path: Path
) -> None:
    settings = settings_for(
        dealt, tmp_path, "\n[feeds]\nheartbeat_s = 5\n\n[timing]\ndelta_round = 1.0\n"
    )
    setup = load_setup(settings, {"XON_TEST_PASSPHRASE": PASSWORD})
    config = setup.config
    assert config.n == 4 and config.f == 1 and config.t == 3
    assert config.by_node[setup.keys.identity.node_id].frost_id == 1
    assert setup.keys.key_package.identifier == 1
    assert config.timing.delta_round == 1.0
    assert config.config_digest == bytes.fromhex("ab" * 32)
    default_feeds = load_default_config().feeds
    assert [s.name for s in config.feeds] == [f.id for f in default_feeds]
    assert all(s.heartbeat_s == 5 for s in config.feeds)  # the override
    assert [s.deviation_bps for s in config.feeds] == [f.deviation_bps for f in default_feeds]
    assert settings.store.path.parent.is_dir()  # created for the store


def test_load_setup_refuses_mismatched_keys_and_passphrases(dealt: Path, tmp_path: Path) -> None:
    settings = settings_for(dealt, tmp_path)
    with pytest.raises(KeystoreError, match="XON_TEST_PASSPHRASE is not set"):
        load_setup(settings, {})
    with pytest.raises(KeystoreError):
        load_setup(settings, {"XON_TEST_PASSPHRASE": "wrong"})
    mixed = settings.model_copy(
        update={
            "keys": settings.keys.model_copy(
                update={"frost_share": dealt / "node-2" / "frost-share.json"}
            )
        }
    )
    with pytest.raises(KeystoreError, match="another member"):
        load_setup(mixed, {"XON_TEST_PASSPHRASE": PASSWORD})
    other_net = settings.model_copy(update={"network": "othernet"})
    with pytest.raises(SettingsError, match="network 'testnet'"):
        load_setup(other_net, {"XON_TEST_PASSPHRASE": PASSWORD})


def test_chain_parameters_come_from_a_deployment_file(dealt: Path, tmp_path: Path) -> None:
    store_address = "0x" + "12" * 20
    digest = "0x" + "cd" * 32
    deployment = {
        "format": "xon-deployment/1",
        "chain_id": 8453,
        "owner": "0x" + "00" * 20,
        "committee": "0x" + "01" * 20,
        "price_feed_store": store_address,
        "hardware_registry": "0x" + "03" * 20,
        "device_nft": "0x" + "04" * 20,
        "valuation_registry": "0x" + "05" * 20,
        "uptime_registry": "0x" + "06" * 20,
        "vault": "0x" + "07" * 20,
        "stablecoin": "0x" + "08" * 20,
        "config_digest": digest,
        "block_number": 1,
        "feed_proxies": {},
    }
    (tmp_path / "deployment.json").write_text(json.dumps(deployment))
    text = MINIMAL.split("[chain]", maxsplit=1)[0] + "[chain]\ndeployment = 'deployment.json'\n"
    text = text.replace("node-1/", f"{dealt}/node-1/").replace(
        '"committee.json"', f'"{dealt}/committee.json"'
    )
    settings = load_settings(write(tmp_path, text))
    from oracle.keystore import read_committee

    config = build_protocol_config(
        settings, read_committee(dealt / "committee.json"), load_default_config()
    )
    assert config.chain_id == 8453
    assert config.verifying_contract == bytes.fromhex("12" * 20)
    assert config.config_digest == bytes.fromhex("cd" * 32)
    # What the committee signs is bound to that chain and contract.
    assert signing_message(8453, store_address, b"r") == signing_message(
        config.chain_id, config.verifying_contract, b"r"
    )
    (tmp_path / "deployment.json").write_text("{}")
    with pytest.raises(SettingsError, match="not an xon-deployment/1 file"):
        build_protocol_config(
            settings, read_committee(dealt / "committee.json"), load_default_config()
        )


def test_broker_password_comes_from_the_named_env_var(tmp_path: Path) -> None:
    extra = "\n[broker]\nusername = 'node-1'\npassword_env = 'XON_TEST_BROKER_PW'\ntls = true\n"
    settings = load_settings(write(tmp_path, MINIMAL + extra))
    mqtt = mqtt_settings(settings, {"XON_TEST_BROKER_PW": "s3cret"})
    assert (mqtt.username, mqtt.password) == ("node-1", "s3cret")
    assert mqtt.tls_context is not None
    assert "s3cret" not in repr(mqtt)
    with pytest.raises(SettingsError, match="XON_TEST_BROKER_PW is unset"):
        mqtt_settings(settings, {})
