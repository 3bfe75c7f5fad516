"""Keys at rest: the node's identity key and its FROST key share, plus committee files.

Three file formats, all JSON, every byte string as ``0x``-prefixed hex (except inside the
Ethereum keystore object, which keeps its own conventions):

**Identity keystore** — a plain Ethereum keystore v3 file (``eth-account``), importable by
any Ethereum tool; its ``address`` is the node's :data:`~oracle.identity.NodeId`.

**FROST share keystore** — a wrapper object, so that no Ethereum tool mistakes a key share
for a wallet account (a bare v3 file of the share would import as one)::

    {
      "format": "xon-frost-share/1",
      "network": "devnet",                 # name of the network the key belongs to
      "key_epoch": 0,                      # increments with every new group key
      "identifier": 3,                     # our FROST participant identifier
      "threshold": 5,
      "group_key": "0x02…",                # compressed SEC1, 33 bytes
      "members": [                         # every member, sorted by identifier
        {"identifier": 1, "node_id": "0x…", "verifying_share": "0x03…"}, …
      ],
      "keystore": { …Ethereum keystore v3… }   # encrypts the 32-byte signing share
    }

The v3 keystore's own ``address`` is the address of our verifying share (eth-account
computes it; it names nothing else). The plaintext fields are public and not covered by
the keystore MAC; on reading, they are checked against the decrypted share (our verifying
share must be share·G) and against each other (all verifying shares must lie on one
polynomial of degree t-1 whose value at 0 is the group key). A node must still compare
the group key with its committee configuration / the chain. eth-account itself ignores
unknown top-level fields when decrypting but drops them when re-encrypting, hence the
wrapper rather than extra fields in the v3 object.

**Committee file** (``committee.json``, public, written by ``xon keys dealer``)::

    {
      "format": "xon-committee/1", "network": "devnet", "key_epoch": 0,
      "n": 7, "f": 2, "threshold": 5,
      "group_key": {"x": "0x…(32 bytes)", "parity": 0, "compressed": "0x02…"},
      "members": [
        {"identifier": 1, "node_id": "0x…", "identity_public_key": "0x02…",
         "verifying_share": "0x03…"}, …
      ]
    }

Identifiers are assigned in :class:`~oracle.identity.Roster` order (NodeIds sorted
case-insensitively): identifier i is the i-th node id.

Passphrases are :class:`Passphrase` objects (from an env var or a file); they never appear in
``repr``, in an exception or in a log record. KDF: scrypt with geth's standard parameters
(n = 2^18, r = 8, p = 1: about 256 MiB and a second per file) unless
:data:`INSECURE_FAST_KDF` is asked for (tests, devnet). Files are written atomically
(temp file in the same directory, fsync, rename, fsync of the directory) with mode 0600.

Errors (all :class:`oracle.errors.KeystoreError`)::

    KeystoreError               missing, unreadable or malformed file
    ├── WrongPassphrase         the MAC does not match: wrong passphrase or a corrupted file
    ├── PassphraseUnavailable   env var unset, passphrase file missing, empty passphrase
    ├── KeystoreExists          the output exists and overwriting was not asked for
    └── InvalidCommittee        n, f, t that do not make a safe committee
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import secrets
import stat
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal, NoReturn

from eth_account import Account

from aggregation.errors import CryptoError
from aggregation.frost import (
    ChainKey,
    KeyPackage,
    N,
    Point,
    PublicKeyPackage,
    Rng,
    chain_key,
    trusted_dealer_keygen,
)
from aggregation.frost.group import point_sum
from oracle.errors import KeystoreError
from oracle.identity import IdentityKey, NodeId, address_of, parse_node_id

__all__ = [
    "INSECURE_FAST_KDF",
    "MAX_MEMBERS",
    "SECURE_KDF",
    "Committee",
    "CommitteeMember",
    "CommitteeParams",
    "DealtCommittee",
    "DealtMember",
    "FrostKeyShare",
    "FrostShareInfo",
    "FrostShareMetadata",
    "IdentityKeystoreInfo",
    "InvalidCommittee",
    "KdfParams",
    "KeystoreExists",
    "Passphrase",
    "PassphraseUnavailable",
    "WrongPassphrase",
    "check_public_key_package",
    "committee_params",
    "deal_committee",
    "inspect_keystore",
    "read_committee",
    "read_frost_share",
    "read_identity_keystore",
    "write_committee",
    "write_frost_share",
    "write_identity_keystore",
]

log = logging.getLogger(__name__)

SHARE_FORMAT: Final = "xon-frost-share/1"
COMMITTEE_FORMAT: Final = "xon-committee/1"
#: Largest committee the tooling deals for (the on-chain signer bookkeeping is sized for it).
MAX_MEMBERS: Final = 31
_NETWORK_NAME: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_U32: Final = 2**32


# -- errors ------------------------------------------------------------------------------
class WrongPassphrase(KeystoreError):
    """The keystore MAC does not match: the passphrase is wrong or the file is corrupted."""


class PassphraseUnavailable(KeystoreError):
    """No usable passphrase: an unset env var, an unreadable file, or an empty value."""


class KeystoreExists(KeystoreError):
    """The output file exists and overwriting was not requested."""


class InvalidCommittee(KeystoreError):
    """Committee parameters that are unsafe or unsupported."""


# -- passphrases -------------------------------------------------------------------------
class Passphrase:
    """A keystore passphrase that never shows itself (repr, str, pickling)."""

    __slots__ = ("_secret",)

    def __init__(self, secret: str) -> None:
        if not secret:
            raise PassphraseUnavailable("the passphrase is empty")
        self._secret = secret

    @classmethod
    def from_env(cls, name: str, environ: Mapping[str, str] | None = None) -> Passphrase:
        env = os.environ if environ is None else environ
        value = env.get(name)
        if value is None:
            raise PassphraseUnavailable(f"environment variable {name} is not set")
        if not value:
            raise PassphraseUnavailable(f"environment variable {name} is empty")
        return cls(value)

    @classmethod
    def from_file(cls, path: str | Path) -> Passphrase:
        """The file's content without trailing newlines (as ``echo pw > file`` writes it)."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise PassphraseUnavailable(
                f"cannot read passphrase file {path}: {exc.strerror}"
            ) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            # `from None`: the decode error object holds the raw bytes, i.e. the secret.
            raise PassphraseUnavailable(f"passphrase file {path} is not UTF-8") from None
        text = text.rstrip("\r\n")
        if not text:
            raise PassphraseUnavailable(f"passphrase file {path} is empty")
        _warn_if_open(path, "passphrase file")
        return cls(text)

    def reveal(self) -> str:
        """The secret itself, for the KDF only."""
        return self._secret

    def __repr__(self) -> str:
        return "Passphrase(<hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("Passphrase is not picklable")


# -- KDF ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class KdfParams:
    """Which KDF eth-account uses and its work factor (scrypt ``n`` / pbkdf2 ``c``)."""

    name: Literal["scrypt", "pbkdf2"]
    work_factor: int


#: geth's "standard" scrypt (n = 2^18, r = 8, p = 1).
SECURE_KDF: Final = KdfParams("scrypt", 2**18)
#: Milliseconds instead of a second per file; for tests and throwaway devnets only.
INSECURE_FAST_KDF: Final = KdfParams("scrypt", 2**10)


def _encrypt(secret: bytes, passphrase: Passphrase, kdf: KdfParams) -> dict[str, Any]:
    if kdf != SECURE_KDF:
        log.debug("keystore.weak_kdf name=%s work_factor=%d", kdf.name, kdf.work_factor)
    try:
        return Account.encrypt(
            secret, passphrase.reveal(), kdf=kdf.name, iterations=kdf.work_factor
        )
    except (ValueError, TypeError) as exc:
        # Never chain: a library error could quote its arguments.
        raise KeystoreError(f"cannot encrypt the key: {type(exc).__name__}") from None


def _decrypt(keystore: Any, passphrase: Passphrase, path: Path) -> bytes:
    if not isinstance(keystore, dict) or keystore.get("version") != 3:
        raise KeystoreError(f"{path}: not an Ethereum keystore v3 object")
    try:
        secret = bytes(Account.decrypt(keystore, passphrase.reveal()))
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise WrongPassphrase(
                f"{path}: wrong passphrase (or a corrupted keystore file)"
            ) from None
        raise KeystoreError(f"{path}: malformed keystore ({type(exc).__name__})") from None
    except (KeyError, TypeError, AssertionError) as exc:
        raise KeystoreError(f"{path}: malformed keystore ({type(exc).__name__})") from None
    if len(secret) != 32:
        raise KeystoreError(f"{path}: the keystore does not hold a 32-byte key")
    return secret


def _kdf_of(keystore: Mapping[str, Any]) -> KdfParams:
    try:
        crypto = keystore.get("crypto") or keystore.get("Crypto") or {}
        params = crypto.get("kdfparams", {})
        name = crypto.get("kdf")
        if name == "scrypt":
            return KdfParams("scrypt", int(params["n"]))
        if name == "pbkdf2":
            return KdfParams("pbkdf2", int(params["c"]))
    except (AttributeError, KeyError, TypeError, ValueError):
        raise KeystoreError("malformed keystore KDF parameters") from None
    raise KeystoreError(f"unsupported keystore KDF {name!r}")


# -- files -------------------------------------------------------------------------------
def _atomic_write(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write ``data`` to ``path`` whole or not at all, mode 0600, never clobbering unless
    ``overwrite``: temp file in the same directory, fsync, then rename (or hard-link, which
    fails if the name appeared meanwhile), then fsync the directory."""
    directory = path.parent
    if not directory.is_dir():
        raise KeystoreError(f"directory {directory} does not exist")
    if not overwrite and path.exists():
        raise KeystoreExists(f"{path} exists; not overwriting it (use --force)")
    try:
        # mkstemp creates the file with mode 0600 already; fchmod below makes it explicit.
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise KeystoreError(f"cannot write in {directory}: {exc.strerror}") from None
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
        _fsync_dir(directory)
    except FileExistsError:
        raise KeystoreExists(f"{path} exists; not overwriting it (use --force)") from None
    except OSError as exc:
        raise KeystoreError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeystoreError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeystoreError(f"cannot read {path}: {exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise KeystoreError(f"{path} is not JSON: {exc}") from None


def _dump(document: Mapping[str, Any]) -> bytes:
    return (json.dumps(document, indent=2) + "\n").encode()


def _warn_if_open(path: Path, what: str) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("keystore.permissions_too_open what=%s path=%s mode=%o", what, path, mode)


# -- hex / point helpers -----------------------------------------------------------------
def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _unhex(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise KeystoreError(f"{what} must be a hex string")
    digits = value[2:] if value.startswith(("0x", "0X")) else value
    try:
        return bytes.fromhex(digits)
    except ValueError:
        raise KeystoreError(f"{what} is not valid hex") from None


def _point(value: Any, what: str) -> Point:
    try:
        return Point.decode(_unhex(value, what))
    except CryptoError as exc:
        raise KeystoreError(f"{what}: {exc}") from None


def _int(value: Any, what: str, low: int = 0, high: int = _U32) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < high:
        raise KeystoreError(f"{what} must be an integer in [{low}, {high})")
    return value


def _node_id(value: Any, what: str) -> NodeId:
    if not isinstance(value, str):
        raise KeystoreError(f"{what} must be an address string")
    try:
        return parse_node_id(value)
    except ValueError as exc:
        raise KeystoreError(f"{what}: {exc}") from None


def _check_network(name: Any) -> str:
    if not isinstance(name, str) or not _NETWORK_NAME.fullmatch(name):
        raise KeystoreError(
            f"network name {name!r} must be 1-32 characters of a-z, 0-9 and '-' "
            "(starting with a letter or digit)"
        )
    return name


def _interpolate(points: Sequence[tuple[int, Point]], x: int) -> Point:
    """The value at ``x`` of the degree len(points)-1 polynomial through ``points`` (in the
    exponent: Lagrange interpolation with point coefficients)."""
    terms = []
    for xj, yj in points:
        num = 1
        den = 1
        for xm, _ in points:
            if xm != xj:
                num = num * (x - xm) % N
                den = den * (xj - xm) % N
        terms.append(yj * (num * pow(den, -1, N) % N))
    return point_sum(terms)


def check_public_key_package(public: PublicKeyPackage) -> None:
    """Raise unless every verifying share lies on one polynomial of degree t-1 whose value
    at 0 is the group key (what a dealer or a DKG run always produces)."""
    problem = _public_key_package_problem(
        public.group_key.encode(),
        public.threshold,
        tuple(sorted((i, s.encode()) for i, s in public.verifying_shares.items())),
    )
    if problem is not None:
        raise KeystoreError(problem)


@functools.lru_cache(maxsize=32)
def _public_key_package_problem(
    group_key: bytes, threshold: int, shares: tuple[tuple[int, bytes], ...]
) -> str | None:
    # Cached: a dealer builds one metadata object per member over the same public package,
    # and the check costs (n - t + 1) * t scalar multiplications.
    points = [(i, Point.decode(s)) for i, s in shares]
    base = points[:threshold]
    if _interpolate(base, 0) != Point.decode(group_key):
        return "the verifying shares do not interpolate to the group key"
    for identifier, share in points[threshold:]:
        if _interpolate(base, identifier) != share:
            return f"verifying share of {identifier} is not on the committee's polynomial"
    return None


# -- committee parameters ----------------------------------------------------------------
@dataclass(frozen=True)
class CommitteeParams:
    """n members tolerating f faults with signing threshold t; checked on construction:
    2 <= n <= 31, 3f < n, f + 1 <= t <= n and t >= 2 (FROST)."""

    n: int
    f: int
    t: int

    def __post_init__(self) -> None:
        n, f, t = self.n, self.f, self.t
        if n > MAX_MEMBERS:
            raise InvalidCommittee(f"n = {n} exceeds the maximum committee size {MAX_MEMBERS}")
        if n < 2:
            raise InvalidCommittee(f"n = {n}: a threshold committee needs at least 2 members")
        if f < 0:
            raise InvalidCommittee(f"f = {f} must not be negative")
        if 3 * f >= n:
            raise InvalidCommittee(
                f"n = {n} cannot tolerate f = {f} faulty members: need n >= 3f + 1 = {3 * f + 1}"
            )
        if t > n:
            raise InvalidCommittee(f"t = {t} exceeds n = {n}")
        if t < f + 1:
            raise InvalidCommittee(
                f"t = {t} is below f + 1 = {f + 1}: f colluding members could sign alone"
            )
        if t < 2:
            raise InvalidCommittee(f"t = {t}: FROST needs a threshold of at least 2")


def committee_params(n: int, t: int | None = None, f: int | None = None) -> CommitteeParams:
    """Defaults from DESIGN §5: f = floor((n - 1) / 3), t = 2f + 1 (at least 2)."""
    if f is None:
        f = (n - 1) // 3
    if t is None:
        t = max(2 * f + 1, 2)
    params = CommitteeParams(n=n, f=f, t=t)
    if t > n - f:
        log.warning(
            "keystore.threshold_above_liveness n=%d f=%d t=%d: f silent members can stall signing",
            n,
            f,
            t,
        )
    return params


# -- identity keystore -------------------------------------------------------------------
@dataclass(frozen=True)
class IdentityKeystoreInfo:
    """Public facts of an identity keystore (no passphrase needed)."""

    path: Path
    node_id: NodeId
    kdf: KdfParams

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "identity",
            "path": str(self.path),
            "node_id": self.node_id,
            "kdf": {"name": self.kdf.name, "work_factor": self.kdf.work_factor},
        }


def write_identity_keystore(
    path: str | Path,
    key: IdentityKey,
    passphrase: Passphrase,
    *,
    kdf: KdfParams = SECURE_KDF,
    overwrite: bool = False,
) -> None:
    path = Path(path)
    if not overwrite and path.exists():  # before the (slow) KDF
        raise KeystoreExists(f"{path} exists; not overwriting it (use --force)")
    keystore = _encrypt(key.secret_bytes(), passphrase, kdf)
    _atomic_write(path, _dump(keystore), overwrite=overwrite)
    log.info("keystore.identity_written path=%s node_id=%s", path, key.node_id)


def read_identity_keystore(path: str | Path, passphrase: Passphrase) -> IdentityKey:
    path = Path(path)
    document = _read_json(path)
    if isinstance(document, dict) and "format" in document:
        raise KeystoreError(f"{path} is a {document['format']} file, not an identity keystore")
    _warn_if_open(path, "keystore")
    secret = _decrypt(document, passphrase, path)
    try:
        key = IdentityKey(secret)
    except CryptoError:
        raise KeystoreError(f"{path}: the keystore does not hold a valid secp256k1 key") from None
    claimed = document.get("address")
    if isinstance(claimed, str) and claimed.lower().removeprefix("0x") != key.node_id[2:].lower():
        raise KeystoreError(f"{path}: the address field does not match the decrypted key")
    return key


# -- FROST share keystore ----------------------------------------------------------------
@dataclass(frozen=True)
class FrostShareMetadata:
    """The public part of a FROST share file: which key, which committee, which member."""

    network: str
    key_epoch: int
    identifier: int
    public: PublicKeyPackage
    node_ids: Mapping[int, NodeId]

    def __post_init__(self) -> None:
        _check_network(self.network)
        _int(self.key_epoch, "key_epoch")
        node_ids = dict(self.node_ids)
        if set(node_ids) != set(self.public.verifying_shares):
            raise KeystoreError("every member needs both a node id and a verifying share")
        if len(set(node_ids.values())) != len(node_ids):
            raise KeystoreError("two members share a node id")
        if self.identifier not in node_ids:
            raise KeystoreError(f"identifier {self.identifier} is not a member")
        check_public_key_package(self.public)
        object.__setattr__(self, "node_ids", MappingProxyType(node_ids))

    @property
    def node_id(self) -> NodeId:
        """Our own node id."""
        return self.node_ids[self.identifier]

    @property
    def verifying_share(self) -> Point:
        return self.public.verifying_shares[self.identifier]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": SHARE_FORMAT,
            "network": self.network,
            "key_epoch": self.key_epoch,
            "identifier": self.identifier,
            "threshold": self.public.threshold,
            "group_key": _hex(self.public.group_key.encode()),
            "members": [
                {
                    "identifier": i,
                    "node_id": self.node_ids[i],
                    "verifying_share": _hex(share.encode()),
                }
                for i, share in sorted(self.public.verifying_shares.items())
            ],
        }

    @staticmethod
    def from_json(document: Any, path: Path) -> FrostShareMetadata:
        if not isinstance(document, dict) or document.get("format") != SHARE_FORMAT:
            raise KeystoreError(f"{path} is not a {SHARE_FORMAT} file")
        members = document.get("members")
        if not isinstance(members, list) or not members:
            raise KeystoreError(f"{path}: members must be a non-empty list")
        shares: dict[int, Point] = {}
        node_ids: dict[int, NodeId] = {}
        for k, member in enumerate(members):
            if not isinstance(member, dict):
                raise KeystoreError(f"{path}: members[{k}] must be an object")
            i = _int(member.get("identifier"), f"members[{k}].identifier", 1)
            if i in shares:
                raise KeystoreError(f"{path}: identifier {i} appears twice")
            shares[i] = _point(member.get("verifying_share"), f"members[{k}].verifying_share")
            node_ids[i] = _node_id(member.get("node_id"), f"members[{k}].node_id")
        try:
            public = PublicKeyPackage(
                group_key=_point(document.get("group_key"), "group_key"),
                verifying_shares=shares,
                threshold=_int(document.get("threshold"), "threshold", 2, MAX_MEMBERS + 1),
            )
            return FrostShareMetadata(
                network=_check_network(document.get("network")),
                key_epoch=_int(document.get("key_epoch"), "key_epoch"),
                identifier=_int(document.get("identifier"), "identifier", 1),
                public=public,
                node_ids=node_ids,
            )
        except CryptoError as exc:
            raise KeystoreError(f"{path}: {exc}") from None
        except KeystoreError as exc:
            raise KeystoreError(f"{path}: {exc}") from None


@dataclass(frozen=True)
class FrostKeyShare:
    """A member's FROST key share with its committee's public data. ``key_package`` holds
    the secret signing share (hidden from repr by :class:`KeyPackage`)."""

    metadata: FrostShareMetadata
    key_package: KeyPackage = field(repr=False)

    def __post_init__(self) -> None:
        kp, meta = self.key_package, self.metadata
        if kp.identifier != meta.identifier:
            raise KeystoreError("the key package belongs to another identifier")
        if kp.group_key != meta.public.group_key or kp.threshold != meta.public.threshold:
            raise KeystoreError("the key package belongs to another group key or threshold")
        if kp.verifying_share != meta.verifying_share:
            raise KeystoreError("the signing share does not match our verifying share")

    @property
    def public(self) -> PublicKeyPackage:
        return self.metadata.public


def write_frost_share(
    path: str | Path,
    share: FrostKeyShare,
    passphrase: Passphrase,
    *,
    kdf: KdfParams = SECURE_KDF,
    overwrite: bool = False,
) -> None:
    path = Path(path)
    if not overwrite and path.exists():
        raise KeystoreExists(f"{path} exists; not overwriting it (use --force)")
    secret = share.key_package.signing_share.to_bytes(32, "big")
    document = share.metadata.to_json()
    document["keystore"] = _encrypt(secret, passphrase, kdf)
    _atomic_write(path, _dump(document), overwrite=overwrite)
    log.info(
        "keystore.frost_share_written path=%s identifier=%d node_id=%s",
        path,
        share.metadata.identifier,
        share.metadata.node_id,
    )


def read_frost_share(path: str | Path, passphrase: Passphrase) -> FrostKeyShare:
    path = Path(path)
    document = _read_json(path)
    metadata = FrostShareMetadata.from_json(document, path)
    _warn_if_open(path, "keystore")
    secret = int.from_bytes(_decrypt(document.get("keystore"), passphrase, path), "big")
    try:
        key_package = KeyPackage(
            identifier=metadata.identifier,
            signing_share=secret,
            verifying_share=metadata.verifying_share,
            group_key=metadata.public.group_key,
            threshold=metadata.public.threshold,
        )
    except CryptoError:
        # KeyPackage checks share·G against the verifying share; its message has no secret,
        # but say what it means for the operator.
        raise KeystoreError(
            f"{path}: the decrypted share does not match the file's verifying share"
        ) from None
    return FrostKeyShare(metadata=metadata, key_package=key_package)


@dataclass(frozen=True)
class FrostShareInfo:
    """Public facts of a FROST share file (no passphrase needed)."""

    path: Path
    metadata: FrostShareMetadata
    kdf: KdfParams

    def to_json(self) -> dict[str, Any]:
        meta = self.metadata
        document = meta.to_json()
        del document["format"]
        document = {"type": "frost-share", "path": str(self.path), **document}
        document["node_id"] = meta.node_id
        document["verifying_share"] = _hex(meta.verifying_share.encode())
        document["chain_key"] = _chain_key_json(meta.public.group_key)
        document["kdf"] = {"name": self.kdf.name, "work_factor": self.kdf.work_factor}
        return document


def inspect_keystore(path: str | Path) -> IdentityKeystoreInfo | FrostShareInfo:
    """What a key file holds, from its public fields only."""
    path = Path(path)
    document = _read_json(path)
    if not isinstance(document, dict):
        raise KeystoreError(f"{path} is not a keystore")
    if "format" in document:
        metadata = FrostShareMetadata.from_json(document, path)
        keystore = document.get("keystore")
        if not isinstance(keystore, dict):
            raise KeystoreError(f"{path}: missing keystore object")
        return FrostShareInfo(path, metadata, _kdf_of(keystore))
    if document.get("version") != 3:
        raise KeystoreError(f"{path} is neither an Ethereum v3 keystore nor an XON share file")
    return IdentityKeystoreInfo(
        path, _node_id("0x" + str(document.get("address", "")), "address"), _kdf_of(document)
    )


# -- committee file ----------------------------------------------------------------------
def _chain_key_json(group_key: Point) -> dict[str, Any] | None:
    try:
        key: ChainKey = chain_key(group_key)
    except CryptoError:
        return None
    return {
        "x": _hex(key.x.to_bytes(32, "big")),
        "parity": key.parity,
        "compressed": _hex(key.compressed),
    }


@dataclass(frozen=True)
class CommitteeMember:
    identifier: int
    node_id: NodeId
    identity_public_key: bytes
    verifying_share: Point

    def __post_init__(self) -> None:
        try:
            derived = address_of(self.identity_public_key)
        except CryptoError as exc:
            raise KeystoreError(f"member {self.identifier}: {exc}") from None
        if derived != self.node_id:
            raise KeystoreError(
                f"member {self.identifier}: node id {self.node_id} is not the address of "
                "its identity public key"
            )


@dataclass(frozen=True)
class Committee:
    """The public description of a committee and its group key (``committee.json``)."""

    network: str
    key_epoch: int
    params: CommitteeParams
    group_key: Point
    members: tuple[CommitteeMember, ...]

    def __post_init__(self) -> None:
        _check_network(self.network)
        _int(self.key_epoch, "key_epoch")
        members = tuple(sorted(self.members, key=lambda m: m.identifier))
        if len(members) != self.params.n:
            raise KeystoreError(f"n = {self.params.n} but {len(members)} members are listed")
        if len({m.identifier for m in members}) != len(members):
            raise KeystoreError("two members share an identifier")
        if len({m.node_id for m in members}) != len(members):
            raise KeystoreError("two members share a node id")
        object.__setattr__(self, "members", members)
        try:
            check_public_key_package(self.public_key_package)
            chain_key(self.group_key)  # the contract cannot verify under a key with Px >= n
        except CryptoError as exc:
            raise KeystoreError(f"unusable group key: {exc}") from None

    @property
    def public_key_package(self) -> PublicKeyPackage:
        return PublicKeyPackage(
            self.group_key, {m.identifier: m.verifying_share for m in self.members}, self.params.t
        )

    @property
    def chain_key(self) -> ChainKey:
        return chain_key(self.group_key)

    @property
    def node_ids(self) -> dict[int, NodeId]:
        return {m.identifier: m.node_id for m in self.members}

    def to_json(self) -> dict[str, Any]:
        return {
            "format": COMMITTEE_FORMAT,
            "network": self.network,
            "key_epoch": self.key_epoch,
            "n": self.params.n,
            "f": self.params.f,
            "threshold": self.params.t,
            "group_key": _chain_key_json(self.group_key),
            "members": [
                {
                    "identifier": m.identifier,
                    "node_id": m.node_id,
                    "identity_public_key": _hex(m.identity_public_key),
                    "verifying_share": _hex(m.verifying_share.encode()),
                }
                for m in self.members
            ],
        }

    @staticmethod
    def from_json(document: Any, path: Path) -> Committee:
        try:
            return Committee._from_json(document)
        except CryptoError as exc:
            raise KeystoreError(f"{path}: {exc}") from None
        except KeystoreError as exc:
            raise KeystoreError(f"{path}: {exc}") from None

    @staticmethod
    def _from_json(document: Any) -> Committee:
        if not isinstance(document, dict) or document.get("format") != COMMITTEE_FORMAT:
            raise KeystoreError(f"not a {COMMITTEE_FORMAT} file")
        params = CommitteeParams(
            n=_int(document.get("n"), "n"),
            f=_int(document.get("f"), "f"),
            t=_int(document.get("threshold"), "threshold"),
        )
        key = document.get("group_key")
        if not isinstance(key, dict):
            raise KeystoreError("group_key must be an object")
        group_key = _point(key.get("compressed"), "group_key.compressed")
        x = _unhex(key.get("x"), "group_key.x")
        if x != group_key.x.to_bytes(32, "big") or key.get("parity") != group_key.parity:
            raise KeystoreError("group_key x / parity do not match its compressed form")
        raw_members = document.get("members")
        if not isinstance(raw_members, list):
            raise KeystoreError("members must be a list")
        members = []
        for k, m in enumerate(raw_members):
            if not isinstance(m, dict):
                raise KeystoreError(f"members[{k}] must be an object")
            members.append(
                CommitteeMember(
                    identifier=_int(m.get("identifier"), f"members[{k}].identifier", 1),
                    node_id=_node_id(m.get("node_id"), f"members[{k}].node_id"),
                    identity_public_key=_unhex(
                        m.get("identity_public_key"), f"members[{k}].identity_public_key"
                    ),
                    verifying_share=_point(
                        m.get("verifying_share"), f"members[{k}].verifying_share"
                    ),
                )
            )
        return Committee(
            network=_check_network(document.get("network")),
            key_epoch=_int(document.get("key_epoch"), "key_epoch"),
            params=params,
            group_key=group_key,
            members=tuple(members),
        )


def write_committee(path: str | Path, committee: Committee, *, overwrite: bool = False) -> None:
    path = Path(path)
    _atomic_write(path, _dump(committee.to_json()), overwrite=overwrite)
    try:
        # Public data: readable by everyone (e.g. a relayer that needs the group key).
        os.chmod(path, 0o644)
    except OSError as exc:
        raise KeystoreError(f"cannot chmod {path}: {exc.strerror}") from None


def read_committee(path: str | Path) -> Committee:
    path = Path(path)
    return Committee.from_json(_read_json(path), path)


# -- trusted dealer ----------------------------------------------------------------------
@dataclass(frozen=True)
class DealtMember:
    identity: IdentityKey
    share: FrostKeyShare = field(repr=False)


@dataclass(frozen=True)
class DealtCommittee:
    committee: Committee
    members: tuple[DealtMember, ...]


def deal_committee(
    params: CommitteeParams,
    *,
    network: str,
    key_epoch: int = 0,
    identities: Iterable[IdentityKey] | None = None,
    rng: Rng = secrets.token_bytes,
) -> DealtCommittee:
    """A trusted dealer for tests and devnets: identity keys (fresh unless given), a FROST
    key with a chain-compatible group key, and every member's share.

    Identifiers follow the roster order (node ids sorted case-insensitively)."""
    _check_network(network)
    keys = (
        list(identities)
        if identities is not None
        else [IdentityKey.generate() for _ in range(params.n)]
    )
    if len(keys) != params.n:
        raise InvalidCommittee(f"{len(keys)} identity keys given for n = {params.n}")
    keys.sort(key=lambda k: k.node_id.lower())
    # trusted_dealer_keygen redraws until Px < n; Committee.__post_init__ checks it again.
    dealt = trusted_dealer_keygen(max_signers=params.n, min_signers=params.t, rng=rng)
    public = dealt.public_key_package
    node_ids = {i: key.node_id for i, key in enumerate(keys, start=1)}
    committee = Committee(
        network=network,
        key_epoch=key_epoch,
        params=params,
        group_key=public.group_key,
        members=tuple(
            CommitteeMember(i, key.node_id, key.public_key, public.verifying_shares[i])
            for i, key in enumerate(keys, start=1)
        ),
    )
    members = tuple(
        DealtMember(
            identity=key,
            share=FrostKeyShare(
                metadata=FrostShareMetadata(network, key_epoch, i, public, node_ids),
                key_package=dealt.key_packages[i],
            ),
        )
        for i, key in enumerate(keys, start=1)
    )
    return DealtCommittee(committee, members)
