"""``xon keys new | dealer | show`` end to end through ``oracle.cli.main``."""

from __future__ import annotations

import json
import secrets
import stat
from pathlib import Path

import pytest

from aggregation.frost import N, sign_with_committee, verify
from oracle.cli import main
from oracle.keystore import Passphrase, read_committee, read_frost_share, read_identity_keystore

SECRET = "cli-Secret-4417-never-print"
ENV = "XON_TEST_KEYSTORE_PW"


@pytest.fixture(autouse=True)
def password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, SECRET)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert SECRET not in out + err
    return code, out, err


def test_keys_new_prints_the_node_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "id.json"
    fast = "--insecure-fast-kdf"
    code, out, _ = run(capsys, "keys", "new", "--out", str(path), "--password-env", ENV, fast)
    assert code == 0
    key = read_identity_keystore(path, Passphrase(SECRET))
    assert out.strip() == key.node_id
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    code, _, err = run(capsys, "keys", "new", "--out", str(path), "--password-env", ENV, fast)
    assert code == 2
    assert "exists" in err
    assert "--force" in err
    assert read_identity_keystore(path, Passphrase(SECRET)) == key

    args = ("keys", "new", "--out", str(path), "--password-env", ENV, fast, "--force")
    code, out, _ = run(capsys, *args)
    assert code == 0
    assert out.strip() != key.node_id


def test_keys_new_passphrase_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "id.json"
    code, _, err = run(capsys, "keys", "new", "--out", str(path), "--password-env", "XON_UNSET_X")
    assert code == 2
    assert "XON_UNSET_X is not set" in err
    assert not path.exists()

    pw_file = tmp_path / "pw"
    pw_file.write_text(SECRET + "\n")
    fast = "--insecure-fast-kdf"
    code, _, _ = run(
        capsys, "keys", "new", "--out", str(path), "--password-file", str(pw_file), fast
    )
    assert code == 0
    read_identity_keystore(path, Passphrase(SECRET))

    with pytest.raises(SystemExit):  # argparse: one of the two is required
        main(["keys", "new", "--out", str(tmp_path / "other.json")])
    capsys.readouterr()


def test_dealer_output_loads_back_and_signs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "committee"
    code, out, _ = run(
        capsys,
        "keys",
        "dealer",
        "--n",
        "7",
        "--t",
        "5",
        "--out",
        str(out_dir),
        "--network",
        "devnet",
        "--password-env",
        ENV,
        "--insecure-fast-kdf",
    )
    assert code == 0
    committee = read_committee(out_dir / "committee.json")
    assert (committee.params.n, committee.params.f, committee.params.t) == (7, 2, 5)
    assert committee.network == "devnet"
    assert committee.chain_key.x < N
    assert committee.group_key.hex() in out

    passphrase = Passphrase(SECRET)
    key_packages = {}
    for member in committee.members:
        node_dir = out_dir / f"node-{member.identifier}"
        assert stat.S_IMODE(node_dir.stat().st_mode) == 0o700
        identity = read_identity_keystore(node_dir / "identity.json", passphrase)
        share = read_frost_share(node_dir / "frost-share.json", passphrase)
        assert identity.node_id == member.node_id
        assert identity.public_key == member.identity_public_key
        assert share.metadata.node_id == member.node_id
        assert share.metadata.identifier == member.identifier
        assert share.public == committee.public_key_package
        key_packages[member.identifier] = share.key_package
        assert member.node_id in out

    message = b"\x11" * 32
    for signers in ([1, 2, 3, 4, 5], [3, 4, 5, 6, 7], [1, 2, 3, 4, 5, 6, 7]):
        signature = sign_with_committee(
            key_packages, committee.public_key_package, signers, message, secrets.token_bytes
        )
        assert verify(committee.group_key, message, signature)

    # Output exists: refused without --force, accepted with it (and yields a new key).
    args = ["keys", "dealer", "--out", str(out_dir), "--password-env", ENV, "--insecure-fast-kdf"]
    code, _, err = run(capsys, *args)
    assert code == 2
    assert "not empty" in err
    code, _, _ = run(capsys, *args, "--n", "4", "--force")
    assert code == 0
    assert read_committee(out_dir / "committee.json").group_key != committee.group_key


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--n", "7", "--t", "2"], "below f + 1 = 3"),
        (["--n", "7", "--t", "8"], "exceeds n = 7"),
        (["--n", "32"], "maximum committee size 31"),
        (["--n", "6", "--f", "2"], "need n >= 3f + 1 = 7"),
        (["--network", "Main Net"], "network name"),
    ],
)
def test_dealer_refuses_bad_committees(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    out_dir = tmp_path / "committee"
    code, _, err = run(
        capsys, "keys", "dealer", "--out", str(out_dir), "--password-env", ENV, *extra
    )
    assert code == 2
    assert message in err
    assert not (out_dir / "committee.json").exists()


def test_show_prints_public_facts_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "c"
    common = ["--password-env", ENV, "--insecure-fast-kdf"]
    assert run(capsys, "keys", "dealer", "--n", "4", "--out", str(out_dir), *common)[0] == 0
    share_path = out_dir / "node-2" / "frost-share.json"
    share = read_frost_share(share_path, Passphrase(SECRET))

    code, out, _ = run(capsys, "keys", "show", str(share_path))
    assert code == 0
    shown = json.loads(out)
    assert shown["type"] == "frost-share"
    assert shown["identifier"] == 2
    assert shown["node_id"] == share.metadata.node_id
    assert shown["chain_key"]["compressed"] == "0x" + share.public.group_key.hex()
    assert "decrypts" not in shown
    secret_hex = f"{share.key_package.signing_share:064x}"
    assert secret_hex not in out
    assert "ciphertext" not in out

    code, out, _ = run(capsys, "keys", "show", str(share_path), "--password-env", ENV)
    assert code == 0
    assert json.loads(out)["decrypts"] is True

    identity_path = out_dir / "node-2" / "identity.json"
    code, out, _ = run(capsys, "keys", "show", str(identity_path))
    assert code == 0
    assert json.loads(out)["node_id"] == share.metadata.node_id

    pw_file = tmp_path / "wrong"
    pw_file.write_text("wrong\n")
    code, _, err = run(capsys, "keys", "show", str(identity_path), "--password-file", str(pw_file))
    assert code == 2
    assert "wrong passphrase" in err

    code, _, err = run(capsys, "keys", "show", str(tmp_path / "missing.json"))
    assert code == 2
    assert "does not exist" in err
