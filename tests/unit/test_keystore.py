"""Keystores: identity key and FROST share files, passphrases, committee files, the dealer."""

from __future__ import annotations

import json
import logging
import os
import pickle
import secrets
import stat
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from aggregation.frost import N, sign_with_committee, verify
from oracle.errors import KeystoreError
from oracle.identity import IdentityKey
from oracle.keystore import (
    INSECURE_FAST_KDF,
    SECURE_KDF,
    DealtCommittee,
    FrostShareInfo,
    IdentityKeystoreInfo,
    InvalidCommittee,
    KeystoreExists,
    Passphrase,
    PassphraseUnavailable,
    WrongPassphrase,
    committee_params,
    deal_committee,
    inspect_keystore,
    read_committee,
    read_frost_share,
    read_identity_keystore,
    write_committee,
    write_frost_share,
    write_identity_keystore,
)

SECRET = "pw-Zebra-7781-do-not-leak"
FAST = INSECURE_FAST_KDF


@pytest.fixture
def passphrase() -> Passphrase:
    return Passphrase(SECRET)


@pytest.fixture(scope="module")
def dealt() -> DealtCommittee:
    return deal_committee(committee_params(4), network="testnet", key_epoch=3)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def save(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document))


# -- identity keystores ------------------------------------------------------------------
def test_identity_round_trip_is_a_standard_v3_file(tmp_path: Path, passphrase: Passphrase) -> None:
    key = IdentityKey.generate()
    path = tmp_path / "id.json"
    write_identity_keystore(path, key, passphrase, kdf=FAST)
    assert mode(path) == 0o600
    assert read_identity_keystore(path, passphrase) == key
    document = load(path)
    assert document["version"] == 3
    assert "0x" + document["address"].lower() == key.node_id.lower()
    # Any Ethereum tool can open it.
    assert bytes(Account.decrypt(document, SECRET)) == key.secret_bytes()
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind
    info = inspect_keystore(path)
    assert isinstance(info, IdentityKeystoreInfo)
    assert info.node_id == key.node_id
    assert info.kdf == FAST


def test_default_kdf_is_geth_standard_scrypt(tmp_path: Path, passphrase: Passphrase) -> None:
    path = tmp_path / "id.json"
    write_identity_keystore(path, IdentityKey.generate(), passphrase)  # about a second
    params = load(path)["crypto"]["kdfparams"]
    assert load(path)["crypto"]["kdf"] == "scrypt"
    assert (params["n"], params["r"], params["p"]) == (2**18, 8, 1)
    assert SECURE_KDF.work_factor == 2**18


def test_wrong_passphrase_is_refused(tmp_path: Path, passphrase: Passphrase) -> None:
    path = tmp_path / "id.json"
    write_identity_keystore(path, IdentityKey.generate(), passphrase, kdf=FAST)
    with pytest.raises(WrongPassphrase, match="wrong passphrase"):
        read_identity_keystore(path, Passphrase("not-it"))


def test_existing_file_is_not_overwritten_without_asking(
    tmp_path: Path, passphrase: Passphrase
) -> None:
    path = tmp_path / "id.json"
    first, second = IdentityKey.generate(), IdentityKey.generate()
    write_identity_keystore(path, first, passphrase, kdf=FAST)
    with pytest.raises(KeystoreExists, match="--force"):
        write_identity_keystore(path, second, passphrase, kdf=FAST)
    assert read_identity_keystore(path, passphrase) == first
    write_identity_keystore(path, second, passphrase, kdf=FAST, overwrite=True)
    assert read_identity_keystore(path, passphrase) == second
    assert mode(path) == 0o600


def test_failed_write_leaves_nothing(
    tmp_path: Path, passphrase: Passphrase, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(KeystoreError, match="cannot write"):
        write_identity_keystore(tmp_path / "id.json", IdentityKey.generate(), passphrase, kdf=FAST)
    assert list(tmp_path.iterdir()) == []


def test_tampered_address_is_detected(tmp_path: Path, passphrase: Passphrase) -> None:
    path = tmp_path / "id.json"
    write_identity_keystore(path, IdentityKey.generate(), passphrase, kdf=FAST)
    document = load(path)
    document["address"] = IdentityKey.generate().node_id[2:]
    save(path, document)
    with pytest.raises(KeystoreError, match="address"):
        read_identity_keystore(path, passphrase)


@pytest.mark.parametrize("content", ["", "{not json", '{"version": 3}', "[1, 2]"])
def test_malformed_files_raise_keystore_errors(
    tmp_path: Path, passphrase: Passphrase, content: str
) -> None:
    path = tmp_path / "id.json"
    path.write_text(content)
    with pytest.raises(KeystoreError):
        read_identity_keystore(path, passphrase)
    with pytest.raises(KeystoreError):
        read_frost_share(path, passphrase)


def test_missing_file(tmp_path: Path, passphrase: Passphrase) -> None:
    with pytest.raises(KeystoreError, match="does not exist"):
        read_identity_keystore(tmp_path / "nope.json", passphrase)


# -- passphrases -------------------------------------------------------------------------
def test_passphrase_hides_itself() -> None:
    p = Passphrase(SECRET)
    assert SECRET not in repr(p)
    assert SECRET not in str(p)
    assert SECRET not in f"{p!r} {p}"
    with pytest.raises(TypeError):
        pickle.dumps(p)
    assert p.reveal() == SECRET


def test_passphrase_from_env() -> None:
    assert Passphrase.from_env("XON_PW", {"XON_PW": SECRET}).reveal() == SECRET
    with pytest.raises(PassphraseUnavailable, match="XON_PW is not set"):
        Passphrase.from_env("XON_PW", {})
    with pytest.raises(PassphraseUnavailable, match="XON_PW is empty"):
        Passphrase.from_env("XON_PW", {"XON_PW": ""})


def test_passphrase_from_file(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text(SECRET + "\n")
    assert Passphrase.from_file(path).reveal() == SECRET
    path.write_text(" spaced \r\n")
    assert Passphrase.from_file(path).reveal() == " spaced "
    path.write_text("\n")
    with pytest.raises(PassphraseUnavailable, match="empty"):
        Passphrase.from_file(path)
    with pytest.raises(PassphraseUnavailable, match="cannot read"):
        Passphrase.from_file(tmp_path / "missing")


def _everything_said(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


def test_passphrase_never_appears_in_errors_or_logs(
    tmp_path: Path, passphrase: Passphrase, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    id_path = tmp_path / "id.json"
    share_path = tmp_path / "share.json"
    key = IdentityKey.generate()
    share = deal_committee(committee_params(4), network="devnet").members[0].share
    write_identity_keystore(id_path, key, passphrase, kdf=FAST)
    write_frost_share(share_path, share, passphrase, kdf=FAST)
    read_identity_keystore(id_path, passphrase)
    read_frost_share(share_path, passphrase)

    attempts: list[Callable[[], object]] = [
        lambda: read_identity_keystore(id_path, Passphrase(SECRET + "x")),
        lambda: read_frost_share(share_path, Passphrase(SECRET[:-1])),
        lambda: write_identity_keystore(id_path, key, passphrase, kdf=FAST),
        lambda: read_frost_share(id_path, passphrase),
        lambda: read_identity_keystore(share_path, passphrase),
    ]
    bad_file = tmp_path / "pw-bad"
    bad_file.write_bytes(b"\xff" + SECRET.encode())
    attempts.append(lambda: Passphrase.from_file(bad_file))
    corrupt = load(id_path)
    corrupt["crypto"]["ciphertext"] = "zz"
    corrupt_path = tmp_path / "corrupt.json"
    save(corrupt_path, corrupt)
    attempts.append(lambda: read_identity_keystore(corrupt_path, passphrase))
    for attempt in attempts:
        with pytest.raises(KeystoreError) as info:
            attempt()
        errors.append(info.value)

    assert len(errors) == len(attempts)
    for exc in errors:
        said = _everything_said(exc)
        assert SECRET not in said
        assert SECRET[:-1] not in said
    for record in caplog.records:
        assert SECRET[:-1] not in record.getMessage()
    assert any(r.name == "oracle.keystore" for r in caplog.records)  # logging did happen


# -- FROST shares ------------------------------------------------------------------------
def test_frost_share_round_trip_and_signing(
    tmp_path: Path, passphrase: Passphrase, dealt: DealtCommittee
) -> None:
    loaded = {}
    for member in dealt.members:
        path = tmp_path / f"share-{member.share.metadata.identifier}.json"
        write_frost_share(path, member.share, passphrase, kdf=FAST)
        assert mode(path) == 0o600
        share = read_frost_share(path, passphrase)
        assert share == member.share
        loaded[share.metadata.identifier] = share
    first = loaded[1]
    assert first.metadata.network == "testnet"
    assert first.metadata.key_epoch == 3
    assert first.metadata.node_ids == dealt.committee.node_ids
    message = b"report digest"
    signature = sign_with_committee(
        {i: s.key_package for i, s in loaded.items()},
        first.public,
        [1, 2, 4],
        message,
        secrets.token_bytes,
    )
    assert verify(dealt.committee.group_key, message, signature)
    assert not verify(dealt.committee.group_key, b"another", signature)


def test_share_file_format_is_a_wrapper(
    tmp_path: Path, passphrase: Passphrase, dealt: DealtCommittee
) -> None:
    share = dealt.members[1].share
    path = tmp_path / "share.json"
    write_frost_share(path, share, passphrase, kdf=FAST)
    document = load(path)
    assert document["format"] == "xon-frost-share/1"
    assert document["identifier"] == 2
    assert document["threshold"] == 3
    assert document["group_key"] == "0x" + dealt.committee.group_key.hex()
    assert [m["identifier"] for m in document["members"]] == [1, 2, 3, 4]
    assert document["keystore"]["version"] == 3
    assert document["keystore"]["address"] != document["members"][1]["node_id"][2:]
    secret = int.from_bytes(Account.decrypt(document["keystore"], SECRET), "big")
    assert secret == share.key_package.signing_share
    assert str(secret) not in repr(share)
    assert hex(secret)[2:] not in repr(share)
    info = inspect_keystore(path)
    assert isinstance(info, FrostShareInfo)
    shown = json.dumps(info.to_json())
    assert "ciphertext" not in shown
    assert info.to_json()["node_id"] == dealt.members[1].identity.node_id


@pytest.mark.parametrize("what", ["other_share", "group_key", "own_share", "swapped_keystore"])
def test_tampered_share_files_are_refused(
    tmp_path: Path, passphrase: Passphrase, dealt: DealtCommittee, what: str
) -> None:
    path = tmp_path / "share.json"
    other_path = tmp_path / "other.json"
    write_frost_share(path, dealt.members[0].share, passphrase, kdf=FAST)
    write_frost_share(other_path, dealt.members[1].share, passphrase, kdf=FAST)
    document = load(path)
    other = load(other_path)
    stranger = deal_committee(committee_params(4), network="testnet").committee
    if what == "other_share":
        document["members"][3]["verifying_share"] = "0x" + stranger.members[3].verifying_share.hex()
    elif what == "group_key":
        document["group_key"] = "0x" + stranger.group_key.hex()
    elif what == "own_share":
        document["members"][0]["verifying_share"] = other["members"][1]["verifying_share"]
        document["members"][1]["verifying_share"] = other["members"][0]["verifying_share"]
    else:
        document["keystore"] = other["keystore"]
    save(path, document)
    with pytest.raises(KeystoreError):
        read_frost_share(path, passphrase)


def test_files_are_not_mistaken_for_each_other(
    tmp_path: Path, passphrase: Passphrase, dealt: DealtCommittee
) -> None:
    share_path = tmp_path / "share.json"
    id_path = tmp_path / "id.json"
    write_frost_share(share_path, dealt.members[0].share, passphrase, kdf=FAST)
    write_identity_keystore(id_path, dealt.members[0].identity, passphrase, kdf=FAST)
    with pytest.raises(KeystoreError, match="not an identity keystore"):
        read_identity_keystore(share_path, passphrase)
    with pytest.raises(KeystoreError, match="xon-frost-share"):
        read_frost_share(id_path, passphrase)


# -- committee parameters ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("n", "f", "t"), [(7, 2, 5), (4, 1, 3), (31, 10, 21), (2, 0, 2), (3, 0, 2)]
)
def test_committee_defaults(n: int, f: int, t: int) -> None:
    params = committee_params(n)
    assert (params.n, params.f, params.t) == (n, f, t)


@pytest.mark.parametrize(
    ("n", "t", "f", "message"),
    [
        (32, None, None, "maximum committee size 31"),
        (1, None, None, "at least 2 members"),
        (6, None, 2, "need n >= 3f \\+ 1 = 7"),
        (7, 2, None, "below f \\+ 1 = 3"),
        (4, 5, None, "exceeds n = 4"),
        (3, 1, 0, "at least 2"),
        (7, 5, -1, "negative"),
    ],
)
def test_unsafe_committees_are_refused(n: int, t: int | None, f: int | None, message: str) -> None:
    with pytest.raises(InvalidCommittee, match=message):
        committee_params(n, t=t, f=f)


# -- committee file and dealer ------------------------------------------------------------
def test_committee_file_round_trip(tmp_path: Path, dealt: DealtCommittee) -> None:
    path = tmp_path / "committee.json"
    write_committee(path, dealt.committee)
    assert read_committee(path) == dealt.committee
    document = load(path)
    key = dealt.committee.chain_key
    assert document["group_key"] == {
        "x": f"0x{key.x:064x}",
        "parity": key.parity,
        "compressed": "0x" + key.compressed.hex(),
    }
    assert key.x < N
    assert (document["n"], document["f"], document["threshold"]) == (4, 1, 3)


@pytest.mark.parametrize("what", ["node_id", "parity", "verifying_share", "n"])
def test_tampered_committee_file_is_refused(
    tmp_path: Path, dealt: DealtCommittee, what: str
) -> None:
    path = tmp_path / "committee.json"
    write_committee(path, dealt.committee)
    document = load(path)
    if what == "node_id":
        document["members"][0]["node_id"] = IdentityKey.generate().node_id
    elif what == "parity":
        document["group_key"]["parity"] ^= 1
    elif what == "verifying_share":
        members = document["members"]
        members[0]["verifying_share"], members[1]["verifying_share"] = (
            members[1]["verifying_share"],
            members[0]["verifying_share"],
        )
    else:
        document["n"] = 5
    save(path, document)
    with pytest.raises(KeystoreError):
        read_committee(path)


def test_dealer_assigns_identifiers_in_roster_order() -> None:
    keys = [IdentityKey.generate() for _ in range(5)]
    result = deal_committee(committee_params(5), network="devnet", identities=keys)
    expected = sorted((k.node_id for k in keys), key=str.lower)
    assert [m.node_id for m in result.committee.members] == expected
    assert [m.identity.node_id for m in result.members] == expected
    for i, member in enumerate(result.members, start=1):
        assert member.share.metadata.identifier == i
        assert member.share.metadata.node_id == member.identity.node_id
    with pytest.raises(InvalidCommittee):
        deal_committee(committee_params(4), network="devnet", identities=keys)
    with pytest.raises(KeystoreError, match="network name"):
        deal_committee(committee_params(5), network="Dev/Net", identities=keys)
