"""Conformance runner for FROST(secp256k1, SHA-256) test-vector files.

Usage: ``python -m aggregation.frost.vectors FILE...``

Every value in a file is recomputed from the file's inputs and compared; one line per check,
a summary, and exit status 1 if any check fails (2 if a file cannot be read at all).
Accepted formats:

- the CFRG / RFC 9591 JSON (``inputs.group_public_key``, ``round_one_outputs.outputs``, ...);
- the ZcashFoundation ``frost`` ``vectors.json`` shapes: ``verifying_key_key`` instead of
  ``group_public_key``, older ``participants`` objects keyed by identifier, identifiers as
  ints, decimal strings or 32-byte hex scalars;
- the ZcashFoundation ``vectors_dkg.json`` shape (``inputs.verifying_key`` and one object per
  participant with ``signing_key``, ``coefficient``, ``vss_commitments``,
  ``proof_of_knowledge``, ``signing_shares`` received from each peer, ``verifying_share``,
  ``signing_share``).

The checks themselves (:func:`check_document`) are pure; only :func:`main` reads files.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aggregation.frost.dkg import check_dkg_share, finalize_dkg, verify_proof_of_knowledge
from aggregation.frost.errors import FrostError
from aggregation.frost.group import Point, base_mul, scalar_from_hex
from aggregation.frost.keys import KeyPackage, PublicKeyPackage, polynomial_evaluate, vss_commit
from aggregation.frost.signing import (
    Signature,
    SignatureShare,
    SigningContext,
    SigningNonces,
    SigningPackage,
    aggregate,
    commit_with_randomness,
    nonce_generate,
    sign,
    verify,
    verify_signature_share,
)

SUITE_NAME = "FROST(secp256k1, SHA-256)"
_SUITE_FIELDS = {"name": SUITE_NAME, "group": "secp256k1", "hash": "SHA-256"}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""

    def line(self) -> str:
        status = "PASS" if self.ok else "FAIL"
        return f"{status} {self.name}" + (f": {self.detail}" if self.detail else "")


class _VectorError(ValueError):
    """A vector file that is malformed at the point being checked."""


class _Result:
    """The outcome of one check, filled in by :meth:`_Checker.check`."""

    def __init__(self) -> None:
        self.problem: str | None = None
        self.ok = False

    def expect(self, expected: object, computed: object) -> None:
        if expected != computed:
            self.problem = f"expected {_show(expected)}, computed {_show(computed)}"

    def require(self, condition: bool, problem: str) -> None:
        if not condition:
            self.problem = problem


_MALFORMED = (FrostError, _VectorError, KeyError, ValueError, TypeError, IndexError)


class _Checker:
    """Collects checks; a check body that raises counts as a failure, not a crash."""

    def __init__(self) -> None:
        self.checks: list[Check] = []

    @contextmanager
    def check(self, name: str) -> Iterator[_Result]:
        result = _Result()
        try:
            yield result
        except _MALFORMED as exc:
            result.problem = f"{type(exc).__name__}: {exc}"
        result.ok = result.problem is None
        self.checks.append(Check(name, result.ok, result.problem or ""))


def _show(value: object) -> str:
    if isinstance(value, Point):
        return value.hex()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, int) and not isinstance(value, bool) and value > 2**32:
        return f"{value:064x}"
    return repr(value)


# -- parsing helpers -----------------------------------------------------------------------
def parse_identifier(value: object) -> int:
    """An identifier as an int, a decimal string, or a 32-byte big-endian hex scalar."""
    if isinstance(value, bool):
        raise _VectorError("identifier must not be a boolean")
    if isinstance(value, int):
        ident = value
    elif isinstance(value, str) and len(value) == 64:
        ident = scalar_from_hex(value)
    elif isinstance(value, str) and value.isdigit():
        ident = int(value)
    else:
        raise _VectorError(f"cannot read identifier {value!r}")
    if ident <= 0:
        raise _VectorError("identifier must be positive")
    return ident


def _count(value: object) -> int:
    if isinstance(value, bool):
        raise _VectorError("count must not be a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise _VectorError(f"cannot read count {value!r}")


def _hex(value: object) -> bytes:
    if not isinstance(value, str):
        raise _VectorError(f"expected a hex string, got {value!r}")
    return bytes.fromhex(value)


def _scalar(value: object) -> int:
    if not isinstance(value, str):
        raise _VectorError(f"expected a hex scalar, got {value!r}")
    return scalar_from_hex(value)


def _point(value: object) -> Point:
    if not isinstance(value, str):
        raise _VectorError(f"expected a hex point, got {value!r}")
    return Point.from_hex(value)


def _entries(container: object) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """(identifier, entry) pairs from a list of objects with ``identifier`` or from an object
    keyed by identifier (older ZF files); duplicates are an error."""
    seen: set[int] = set()
    if isinstance(container, list):
        pairs = [(e["identifier"], e) for e in container]
    elif isinstance(container, dict):
        pairs = list(container.items())
    else:
        raise _VectorError("expected a list or an object of participants")
    for raw, entry in pairs:
        ident = parse_identifier(raw)
        if not isinstance(entry, dict):
            raise _VectorError(f"entry for {ident} is not an object")
        if "identifier" in entry and parse_identifier(entry["identifier"]) != ident:
            raise _VectorError(f"entry keyed {ident} names identifier {entry['identifier']}")
        if ident in seen:
            raise _VectorError(f"identifier {ident} appears twice")
        seen.add(ident)
        yield ident, entry


def _check_suite(c: _Checker, doc: Mapping[str, Any]) -> None:
    with c.check("ciphersuite") as r:
        config = doc.get("config", {})
        for key, want in _SUITE_FIELDS.items():
            if key in config and config[key] != want:
                r.problem = f"config.{key} is {config[key]!r}; this runner checks {want!r} only"


# -- signing vectors ---------------------------------------------------------------------------
def check_signing_vectors(doc: Mapping[str, Any]) -> list[Check]:
    """Recompute every value of an RFC / ZF signing vector file from its inputs and compare."""
    c = _Checker()
    _check_suite(c, doc)
    inputs = doc["inputs"]
    config = doc.get("config", {})
    secret = _scalar(inputs["group_secret_key"])
    group_key = base_mul(secret)
    key_field = "group_public_key" if "group_public_key" in inputs else "verifying_key_key"
    with c.check("group_public_key") as r:
        r.expect(_point(inputs[key_field]), group_key)
    coefficients = [_scalar(v) for v in inputs["share_polynomial_coefficients"]]
    polynomial = [secret, *coefficients]
    threshold = len(polynomial)
    if "MIN_PARTICIPANTS" in config:
        with c.check("MIN_PARTICIPANTS") as r:
            r.expect(_count(config["MIN_PARTICIPANTS"]), threshold)

    shares: dict[int, int] = {}
    with c.check("participant_shares") as r:
        for ident, entry in _entries(inputs.get("participant_shares", inputs.get("participants"))):
            shares[ident] = _scalar(entry["participant_share"])
    if "MAX_PARTICIPANTS" in config:
        with c.check("MAX_PARTICIPANTS") as r:
            r.expect(_count(config["MAX_PARTICIPANTS"]), len(shares))
    for ident, share in sorted(shares.items()):
        with c.check(f"participant_share[{ident}]") as r:
            r.expect(share, polynomial_evaluate(ident, polynomial))

    message = _hex(inputs["message"])
    round_one = doc["round_one_outputs"]
    r1 = dict(_entries(round_one.get("outputs", round_one.get("participants"))))
    signers = sorted(r1)
    if "participant_list" in inputs:
        with c.check("participant_list") as r:
            r.expect(sorted(parse_identifier(x) for x in inputs["participant_list"]), signers)
    if "NUM_PARTICIPANTS" in config:
        with c.check("NUM_PARTICIPANTS") as r:
            r.expect(_count(config["NUM_PARTICIPANTS"]), len(signers))

    nonces: dict[int, SigningNonces] = {}
    for ident in signers:
        derived = _check_round_one(c, ident, shares.get(ident), r1[ident])
        if derived is not None:
            nonces[ident] = derived
    if len(nonces) != len(signers):
        return c.checks

    package = SigningPackage(tuple(n.commitments for n in nonces.values()), message)
    context = SigningContext(package, group_key)
    for ident in signers:
        entry = r1[ident]
        if "binding_factor_input" in entry:
            with c.check(f"binding_factor_input[{ident}]") as r:
                r.expect(_hex(entry["binding_factor_input"]), context.binding_factor_input(ident))
        if "binding_factor" in entry:
            with c.check(f"binding_factor[{ident}]") as r:
                r.expect(_scalar(entry["binding_factor"]), context.binding_factors[ident])

    round_two = doc["round_two_outputs"]
    r2 = dict(_entries(round_two.get("outputs", round_two.get("participants"))))
    with c.check("round_two_outputs signers") as r:
        r.expect(signers, sorted(r2))
    given_shares: list[SignatureShare] = []
    for ident in sorted(set(r2) & set(nonces)):
        with c.check(f"sig_share[{ident}]") as r:
            given = SignatureShare(ident, _scalar(r2[ident]["sig_share"]))
            key_package = KeyPackage(
                ident, shares[ident], base_mul(shares[ident]), group_key, threshold
            )
            r.expect(given.share, sign(package, nonces[ident], key_package, context=context).share)
            given_shares.append(given)
        if given_shares and given_shares[-1].identifier == ident:
            with c.check(f"sig_share[{ident}] verifies") as r:
                r.require(
                    verify_signature_share(given, base_mul(shares[ident]), context),
                    "share does not verify against the participant's verification share",
                )

    with c.check("final signature") as r:
        expected = Signature.decode(_hex(doc["final_output"]["sig"]))
        public = PublicKeyPackage(group_key, {i: base_mul(s) for i, s in shares.items()}, threshold)
        r.expect(expected, aggregate(package, given_shares, public, context=context))
        r.require(verify(group_key, message, expected), "signature does not verify")
    return c.checks


def _check_round_one(
    c: _Checker, ident: int, share: int | None, entry: Mapping[str, Any]
) -> SigningNonces | None:
    """Nonces and commitments of one signer from its randomness; returns our nonces."""
    with c.check(f"round_one[{ident}] nonces from randomness") as r:
        if share is None:
            raise _VectorError(f"signer {ident} has no participant share")
        hiding_random = _hex(entry["hiding_nonce_randomness"])
        binding_random = _hex(entry["binding_nonce_randomness"])
        nonces, commitments = commit_with_randomness(ident, share, hiding_random, binding_random)
    if not r.ok:
        return None
    with c.check(f"hiding_nonce[{ident}]") as r:
        r.expect(_scalar(entry["hiding_nonce"]), nonce_generate(share, hiding_random))
    with c.check(f"binding_nonce[{ident}]") as r:
        r.expect(_scalar(entry["binding_nonce"]), nonce_generate(share, binding_random))
    with c.check(f"hiding_nonce_commitment[{ident}]") as r:
        r.expect(_point(entry["hiding_nonce_commitment"]), commitments.hiding)
    with c.check(f"binding_nonce_commitment[{ident}]") as r:
        r.expect(_point(entry["binding_nonce_commitment"]), commitments.binding)
    return nonces


# -- DKG vectors ---------------------------------------------------------------------------------
def check_dkg_vectors(doc: Mapping[str, Any]) -> list[Check]:
    """Check a ZF ``vectors_dkg.json``: commitments, proofs of knowledge, shares, and every
    participant's final key material (as ZF ``check_dkg_keygen`` does)."""
    c = _Checker()
    _check_suite(c, doc)
    config = doc["config"]
    inputs = doc["inputs"]
    threshold = _count(config["MIN_PARTICIPANTS"])
    ids = list(range(1, _count(config["MAX_PARTICIPANTS"]) + 1))
    with c.check("participants") as r:
        r.expect(ids, sorted(parse_identifier(k) for k in inputs if k.isdigit()))
    entries = {i: inputs[str(i)] for i in ids if str(i) in inputs}
    polynomials: dict[int, list[int]] = {}
    commitments: dict[int, tuple[Point, ...]] = {}
    for i, entry in entries.items():
        with c.check(f"identifier[{i}]") as r:
            r.expect(i, parse_identifier(entry["identifier"]))
        with c.check(f"vss_commitments[{i}]") as r:
            extra = [entry["coefficient"]] if "coefficient" in entry else entry["coefficients"]
            polynomials[i] = [_scalar(entry["signing_key"]), *(_scalar(x) for x in extra)]
            given = tuple(_point(p) for p in entry["vss_commitments"])
            r.expect(threshold, len(given))
            r.expect(given, vss_commit(polynomials[i]))
            commitments[i] = given
        with c.check(f"proof_of_knowledge[{i}]") as r:
            proof = Signature.decode(_hex(entry["proof_of_knowledge"]))
            r.require(
                verify_proof_of_knowledge(i, commitments[i], proof),
                "proof of knowledge does not verify",
            )
    if set(commitments) != set(ids):
        return c.checks
    group_key = _point(inputs["verifying_key"])
    all_verifying = {j: _point(entries[j]["verifying_share"]) for j in ids}
    for i in ids:
        _check_dkg_participant(
            c,
            i,
            entries[i],
            polynomials=polynomials,
            commitments=commitments,
            group_key=group_key,
            all_verifying=all_verifying,
        )
    return c.checks


def _check_dkg_participant(
    c: _Checker,
    i: int,
    entry: Mapping[str, Any],
    *,
    polynomials: Mapping[int, list[int]],
    commitments: Mapping[int, tuple[Point, ...]],
    group_key: Point,
    all_verifying: Mapping[int, Point],
) -> None:
    peers = [j for j in sorted(commitments) if j != i]
    raw = entry["signing_shares"]
    with c.check(f"signing_shares[{i}] senders") as r:
        r.expect(peers, sorted(parse_identifier(k) for k in raw))
    received: dict[int, int] = {}
    for j in peers:
        with c.check(f"signing_share {j}->{i}") as r:
            share = _scalar(raw[str(j)])
            r.expect(share, polynomial_evaluate(i, polynomials[j]))
            check_dkg_share(i, j, share, commitments[j])
            received[j] = share
    if set(received) != set(peers):
        return
    own = polynomial_evaluate(i, polynomials[i])
    with c.check(f"participant {i} finalize") as r:
        out = finalize_dkg(i, len(polynomials[i]), own, commitments, received)
    if not r.ok:
        return
    with c.check(f"signing_share[{i}]") as r:
        r.expect(_scalar(entry["signing_share"]), out.key_package.signing_share)
    with c.check(f"verifying_share[{i}]") as r:
        r.expect(_point(entry["verifying_share"]), out.key_package.verifying_share)
    with c.check(f"verifying_key (participant {i})") as r:
        r.expect(group_key, out.public_key_package.group_key)
    with c.check(f"all verifying_shares (participant {i})") as r:
        r.expect(all_verifying, dict(out.public_key_package.verifying_shares))


# -- entry points ----------------------------------------------------------------------------------
def is_dkg_document(doc: Mapping[str, Any]) -> bool:
    inputs = doc.get("inputs", {})
    return "round_one_outputs" not in doc and any(
        isinstance(v, dict) and "proof_of_knowledge" in v for v in inputs.values()
    )


def check_document(doc: Mapping[str, Any]) -> list[Check]:
    """Every check for one parsed vector file; a malformed file yields a failed check."""
    try:
        if is_dkg_document(doc):
            return check_dkg_vectors(doc)
        return check_signing_vectors(doc)
    except (FrostError, _VectorError, KeyError, ValueError, TypeError, IndexError) as exc:
        return [Check("file structure", False, f"{type(exc).__name__}: {exc}")]


def main(argv: Sequence[str] | None = None) -> int:
    paths = list(sys.argv[1:] if argv is None else argv)
    if not paths:
        print("usage: python -m aggregation.frost.vectors FILE...", file=sys.stderr)
        return 2
    failed = passed = 0
    unreadable = False
    for path in paths:
        print(f"== {path}")
        try:
            with open(path, encoding="utf-8") as fh:
                doc = json.load(fh)
        except (OSError, ValueError) as exc:
            print(f"FAIL cannot read {path}: {exc}")
            unreadable = True
            continue
        checks = (
            check_document(doc)
            if isinstance(doc, dict)
            else [Check("file", False, "not a JSON object")]
        )
        for check in checks:
            print(check.line())
        file_failed = sum(not ch.ok for ch in checks)
        failed += file_failed
        passed += len(checks) - file_failed
        print(f"-- {path}: {len(checks) - file_failed} checks passed, {file_failed} failed")
    print(f"summary: {passed} checks passed, {failed} failed in {len(paths)} file(s)")
    if unreadable:
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
