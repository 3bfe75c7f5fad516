"""Consensus message codecs: round trips, and strict refusal of anything else."""

from __future__ import annotations

import random
from typing import Any

import pytest

from aggregation.errors import EncodingError
from aggregation.frost import commit
from oracle.protocol.messages import (
    CommitmentEntry,
    Commitments,
    FinalReport,
    NewEpoch,
    Observation,
    Observe,
    Propose,
    Share,
    SignerEntry,
    commitment_id,
    decode_message,
)
from oracle.transport.envelope import JsonValue, MessageType, to_hex
from tests.sim.helpers import committee

C = committee(4)
NODE = C.node(0)
_rng = random.Random(3).randbytes
_, COMMITS = commit(C.dealer.key_packages[1], _rng)
_, COMMITS2 = commit(C.dealer.key_packages[2], _rng)


def _messages() -> list[Any]:
    return [
        Observe(1, 2, NODE),
        Observation(
            3, 4, 1_700_000_000, (("H100-SXM/USD-HR", 2_5000), ("A100/USD", -7)), (b"\x01" * 32,)
        ),
        Propose(
            5,
            6,
            1,
            b"\xaa" * 64,
            (b"\x01" * 80, b"\x02" * 81),
            (SignerEntry(NODE, commitment_id(COMMITS), COMMITS),),
            ((b"\xbb" * 40, b"\x03" * 65),),
        ),
        Propose(5, 6, 0, None, (b"\x01" * 80,), ()),
        Share(7, 8, 2, b"\x05" * 32),
        FinalReport(9, 10, b"\xcc" * 96, b"\x02" * 65),
        NewEpoch(11),
        Commitments("batch-1", (CommitmentEntry.of(COMMITS),), (b"\x07" * 16,)),
    ]


@pytest.mark.parametrize("message", _messages(), ids=lambda m: type(m).__name__)
def test_round_trip(message: Any) -> None:
    payload = message.to_payload()
    assert decode_message(message.TYPE, payload) == message


def test_observation_values_are_sorted_and_travel_as_decimal_strings() -> None:
    obs = Observation(1, 1, 5, (("b", 2**200), ("a", -3)))
    assert obs.values == (("a", -3), ("b", 2**200))
    assert obs.to_payload()["values"] == {"a": "-3", "b": str(2**200)}


def _with(message: Any, **changes: Any) -> dict[str, Any]:
    payload = dict(message.to_payload())
    payload.update(changes)
    return payload


@pytest.mark.parametrize(
    ("message", "changes"),
    [
        (Observe(1, 2, NODE), {"extra": 1}),
        (Observe(1, 2, NODE), {"e": True}),
        (Observe(1, 2, NODE), {"e": 0}),
        (Observe(1, 2, NODE), {"r": 2**32}),
        (Observe(1, 2, NODE), {"leader": NODE.lower()}),
        (Observation(1, 1, 5, (("a", 1),)), {"values": {"a": "01"}}),
        (Observation(1, 1, 5, (("a", 1),)), {"values": {"a": 1}}),
        (Observation(1, 1, 5, (("a", 1),)), {"values": {"a": "-0"}}),
        (Observation(1, 1, 5, (("a", 1),)), {"values": {"a": str(2**255)}}),
        (Observation(1, 1, 5, (("a", 1),)), {"values": {"bad name": "1"}}),
        (Observation(1, 1, 5, (("a", 1),)), {"snapshots": ["0x" + "AB" * 32]}),
        (Observation(1, 1, 5, (("a", 1),)), {"snapshots": ["0x" + "ab" * 31]}),
        (Share(1, 1, 0, b"\x01" * 32), {"share": "0x" + "01" * 31}),
        (Share(1, 1, 0, b"\x01" * 32), {"session": 5000}),
        (FinalReport(1, 1, b"\x01", b"\x02" * 65), {"signature": "0x" + "02" * 64}),
        (NewEpoch(1), {"e": "1"}),
        (Propose(1, 1, 0, None, (), ()), {"session": 1}),
        (
            Propose(1, 1, 0, None, (), ()),
            {"report": "0x01", "signers": []},
        ),
        (
            Propose(1, 1, 0, None, (), ()),
            {"finals": [{"report": "0x01", "signature": "0x01"}] * 5},
        ),
    ],
)
def test_strict_decoding_refuses(message: Any, changes: dict[str, Any]) -> None:
    with pytest.raises(EncodingError):
        decode_message(message.TYPE, _with(message, **changes))


def test_a_commitment_id_must_match_its_points() -> None:
    entry: dict[str, JsonValue] = {
        "id": to_hex(commitment_id(COMMITS2)),
        "commitments": to_hex(COMMITS.encode()),
    }
    payload: dict[str, JsonValue] = {"batch": "b", "commitments": [entry], "invalidate": []}
    with pytest.raises(EncodingError):
        decode_message(MessageType.COMMITMENTS, payload)


def test_one_commitments_message_speaks_for_one_signer() -> None:
    with pytest.raises(EncodingError):
        Commitments("b", (CommitmentEntry.of(COMMITS), CommitmentEntry.of(COMMITS2)))


def test_duplicate_signers_and_bad_points_are_refused() -> None:
    signer = SignerEntry(NODE, commitment_id(COMMITS), COMMITS)
    with pytest.raises(EncodingError):
        Propose(1, 1, 0, b"\x01", (), (signer, signer))
    payload = Propose(1, 1, 0, b"\x01", (), (signer,)).to_payload()
    bad = dict(payload)
    bad["signers"] = [{**signer.to_json(), "commitments": "0x" + "00" * 98}]
    with pytest.raises(EncodingError):
        decode_message(MessageType.PROPOSE, bad)
