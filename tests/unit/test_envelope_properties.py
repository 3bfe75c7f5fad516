"""Hypothesis: the frame decoder never raises, and no corruption or replay gets through."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracle.identity import IdentityKey, Roster
from oracle.transport.envelope import (
    DropReason,
    Envelope,
    FrameVerifier,
    JsonValue,
    MessageType,
    Received,
    Rejected,
    seal,
    signing_domain,
)
from oracle.transport.topics import Topics

NET = "devnet"
TOPIC = Topics(NET).consensus
ALICE = IdentityKey(bytes.fromhex("11" * 32))
BOB = IdentityKey(bytes.fromhex("22" * 32))
ROSTER = Roster.of(ALICE, BOB)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values: st.SearchStrategy[JsonValue] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
payloads = st.dictionaries(st.text(max_size=8), json_values, max_size=5)


def verifier() -> FrameVerifier:
    return FrameVerifier(NET, ROSTER, me=BOB.node_id)


def good_frame(payload: dict[str, JsonValue], seq: int = 1) -> bytes:
    env = Envelope(
        net=NET, type=MessageType.OBSERVATION, sender=ALICE.node_id, seq=seq, payload=payload
    )
    return seal(env, ALICE).frame


@SETTINGS
@given(st.binary(max_size=600))
def test_random_bytes_never_raise_and_are_rejected(data: bytes) -> None:
    result = verifier().verify(data, TOPIC)
    assert isinstance(result, Rejected)


@SETTINGS
@given(st.binary(max_size=400))
def test_member_signed_random_bodies_never_raise_and_are_rejected(body: bytes) -> None:
    # A valid signature over junk: the decoder must reach the JSON stage and still cope.
    frame = ALICE.sign(signing_domain(NET), body) + body
    result = verifier().verify(frame, TOPIC)
    assert isinstance(result, Rejected)
    assert result.reason in {DropReason.MALFORMED, DropReason.BAD_SIGNATURE}


@SETTINGS
@given(payloads)
def test_any_json_payload_round_trips(payload: dict[str, JsonValue]) -> None:
    result = verifier().verify(good_frame(payload), TOPIC)
    assert isinstance(result, Received)
    assert result.payload == payload


@SETTINGS
@given(payloads, st.data())
def test_any_bit_flip_is_dropped_as_bad_signature_or_malformed(
    payload: dict[str, JsonValue], data: st.DataObject
) -> None:
    frame = good_frame(payload)
    bit = data.draw(st.integers(0, len(frame) * 8 - 1), label="bit")
    corrupted = bytearray(frame)
    corrupted[bit // 8] ^= 1 << (bit % 8)
    result = verifier().verify(bytes(corrupted), TOPIC)
    assert isinstance(result, Rejected)
    assert result.reason in {DropReason.BAD_SIGNATURE, DropReason.MALFORMED}


@SETTINGS
@given(payloads, st.sampled_from(["testnet", "mainnet", "devnet-2"]))
def test_frames_of_another_network_are_dropped(payload: dict[str, JsonValue], other: str) -> None:
    env = Envelope(net=other, type=MessageType.SHARE, sender=ALICE.node_id, seq=1, payload=payload)
    result = verifier().verify(seal(env, ALICE).frame, TOPIC)
    assert isinstance(result, Rejected)
    assert result.reason is DropReason.BAD_SIGNATURE  # the domain binds the network


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=25))
def test_only_strictly_increasing_seqs_are_accepted(seqs: list[int]) -> None:
    v = verifier()
    high = 0
    for index, seq in enumerate(seqs):
        # distinct payloads, so only the seq rule (not the duplicate LRU) can refuse
        result = v.verify(good_frame({"i": index}, seq), TOPIC)
        if seq > high:
            assert isinstance(result, Received)
            high = seq
        else:
            assert isinstance(result, Rejected) and result.reason is DropReason.REPLAYED
