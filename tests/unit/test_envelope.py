"""Identity keys, the canonical envelope encoding and every receive-side drop rule."""

from __future__ import annotations

import json
import pickle

import pytest

from aggregation.errors import CryptoError, EncodingError
from oracle.identity import (
    IdentityKey,
    NodeId,
    Roster,
    address_of,
    parse_node_id,
    recover_signer,
)
from oracle.transport.envelope import (
    DropReason,
    Envelope,
    FrameVerifier,
    MessageType,
    Received,
    Rejected,
    SeqCounter,
    encode_body,
    from_hex,
    open_frame,
    seal,
    signing_domain,
    to_hex,
)
from oracle.transport.topics import Topics, topic_matches

NET = "devnet"
TOPICS = Topics(NET)
CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

# Fixed keys so that the golden encoding below is stable.
ALICE = IdentityKey(bytes.fromhex("11" * 32))
BOB = IdentityKey(bytes.fromhex("22" * 32))
CAROL = IdentityKey(bytes.fromhex("33" * 32))
MALLORY = IdentityKey(bytes.fromhex("44" * 32))  # not a member
ROSTER = Roster.of(ALICE, BOB, CAROL)


def envelope(
    sender: IdentityKey = ALICE,
    *,
    seq: int = 1,
    payload: dict[str, object] | None = None,
    to: NodeId | None = None,
    type: MessageType = MessageType.OBSERVE,
    net: str = NET,
) -> Envelope:
    return Envelope(
        net=net,
        type=type,
        sender=sender.node_id,
        seq=seq,
        payload=payload if payload is not None else {"epoch": 1, "round": 2},  # type: ignore[arg-type]
        to=to,
    )


def signed_body(body: bytes, key: IdentityKey = ALICE, net: str = NET) -> bytes:
    """A frame whose body is arbitrary bytes, validly signed by ``key``."""
    return key.sign(signing_domain(net), body) + body


def body_dict(**overrides: object) -> bytes:
    document: dict[str, object] = {
        "net": NET,
        "payload": {},
        "sender": ALICE.node_id,
        "seq": 1,
        "to": None,
        "type": "observe",
        "v": 1,
    }
    document.update(overrides)
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def verifier(me: IdentityKey | None = BOB, **kwargs: int) -> FrameVerifier:
    return FrameVerifier(NET, ROSTER, me=me.node_id if me else None, **kwargs)


def reason(result: Received | Rejected) -> DropReason | None:
    return result.reason if isinstance(result, Rejected) else None


# -- identity ------------------------------------------------------------------------


def test_node_id_is_the_checksummed_ethereum_address() -> None:
    # 0x11…11 is a well-known test key; its address is fixed by Ethereum's definition.
    assert ALICE.node_id == "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A"
    assert address_of(ALICE.public_key) == ALICE.node_id
    assert len(ALICE.public_key) == 33


def test_signature_recovers_the_signer_only_under_the_same_domain_and_message() -> None:
    sig = ALICE.sign(b"xon/devnet/v1", b"hello")
    assert len(sig) == 65
    assert recover_signer(b"xon/devnet/v1", b"hello", sig) == ALICE.node_id
    assert recover_signer(b"xon/mainnet/v1", b"hello", sig) != ALICE.node_id
    assert recover_signer(b"xon/devnet/v1", b"hellO", sig) != ALICE.node_id


def test_high_s_twin_and_bad_recovery_ids_are_rejected() -> None:
    sig = ALICE.sign(b"d", b"m")
    s = int.from_bytes(sig[32:64], "big")
    twin = sig[:32] + (CURVE_ORDER - s).to_bytes(32, "big") + bytes([sig[64] ^ 1])
    with pytest.raises(CryptoError):
        recover_signer(b"d", b"m", twin)
    for bad in (sig[:64] + b"\x02", b"\x00" * 65, sig[:64]):
        with pytest.raises(CryptoError):
            recover_signer(b"d", b"m", bad)


def test_key_material_never_shows_in_repr_or_pickle() -> None:
    secret_hex = "11" * 32
    assert secret_hex not in repr(ALICE) and secret_hex not in str(ALICE)
    assert ALICE.node_id in repr(ALICE)
    with pytest.raises(TypeError):
        pickle.dumps(ALICE)
    with pytest.raises(CryptoError) as info:
        IdentityKey(b"\x00" * 32)
    assert "00" * 8 not in str(info.value)
    with pytest.raises(CryptoError):
        IdentityKey(CURVE_ORDER.to_bytes(32, "big"))
    assert IdentityKey.from_hex("0x" + secret_hex) == ALICE
    assert ALICE.secret_bytes() == bytes.fromhex(secret_hex)


def test_parse_node_id_normalises_case_and_rejects_bad_checksums() -> None:
    lower = ALICE.node_id.lower()
    assert parse_node_id(lower) == ALICE.node_id
    assert parse_node_id("0x" + lower[2:].upper()) == ALICE.node_id
    broken = ALICE.node_id[:-1] + ALICE.node_id[-1].swapcase()
    with pytest.raises(ValueError, match="checksum"):
        parse_node_id(broken)
    for bad in ("", "0x1234", "0x" + "zz" * 20, lower[2:] + "00", lower[:-2] + " a", lower + "\n"):
        with pytest.raises(ValueError):
            parse_node_id(bad)


def test_roster_is_ordered_by_address_and_compares_by_members() -> None:
    roster = Roster([CAROL.public_key, ALICE.public_key, BOB.public_key])
    assert roster == ROSTER
    assert list(roster) == sorted(roster, key=str.lower)
    assert roster[ALICE.node_id] == ALICE.public_key
    assert MALLORY.node_id not in roster and len(roster) == 3
    with pytest.raises(CryptoError):
        Roster([b"\x02" + b"\x00" * 32])


# -- encoding ------------------------------------------------------------------------


def test_body_is_canonical_json_sorted_compact_utf8() -> None:
    env = envelope(payload={"z": [1, {"b": True, "a": None}], "a": "é", "hash": to_hex(b"\x01")})
    body = encode_body(env)
    expected = (
        '{"net":"devnet","payload":{"a":"é","hash":"0x01","z":[1,{"a":null,"b":true}]},'
        f'"sender":"{ALICE.node_id}","seq":1,"to":null,"type":"observe","v":1}}'
    )
    assert body == expected.encode()
    # Serialised once: the frame carries exactly these bytes after the signature.
    assert seal(env, ALICE).frame[65:] == body


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({"price": 1.5}, "floats"),
        ({"raw": b"\x00"}, "hex"),
        ({"nested": {1: "x"}}, "keys"),
        ({"when": object()}, "not a JSON value"),
        ({"bad": "\ud800"}, "canonically"),
    ],
)
def test_payloads_that_have_no_canonical_form_are_refused(payload: object, match: str) -> None:
    with pytest.raises(EncodingError, match=match):
        encode_body(envelope(payload=payload))  # type: ignore[arg-type]


def test_seal_refuses_a_key_that_is_not_the_sender() -> None:
    with pytest.raises(ValueError):
        seal(envelope(ALICE), BOB)


def test_hex_helpers_round_trip_and_reject_garbage() -> None:
    assert from_hex(to_hex(b"\x00\xff")) == b"\x00\xff"
    for bad in ("00ff", "0xzz", "0x0"):
        with pytest.raises(EncodingError):
            from_hex(bad)


def test_seq_counter_is_strictly_increasing_even_when_the_clock_steps_back() -> None:
    readings = iter([100, 100, 50, 200])
    counter = SeqCounter(clock=lambda: next(readings))
    assert [counter.next() for _ in range(4)] == [100, 101, 102, 200]
    assert SeqCounter(start=500, clock=lambda: 10).next() == 501


# -- receiving: acceptance -----------------------------------------------------------


def test_a_member_frame_is_accepted_with_its_evidence() -> None:
    env = envelope(payload={"x": "0xab"})
    frame = seal(env, ALICE).frame
    result = verifier().verify(frame, TOPICS.consensus)
    assert isinstance(result, Received)
    assert (result.sender, result.seq, result.type, result.payload) == (
        ALICE.node_id,
        1,
        MessageType.OBSERVE,
        {"x": "0xab"},
    )
    assert result.frame == frame and result.body == encode_body(env)
    assert recover_signer(signing_domain(NET), result.body, result.signature) == ALICE.node_id
    assert result.topic == TOPICS.consensus and not result.retained


def test_inbox_message_is_accepted_only_on_the_recipients_inbox() -> None:
    frame = seal(envelope(to=BOB.node_id, seq=5), ALICE).frame
    assert isinstance(verifier(BOB).verify(frame, TOPICS.inbox(BOB.node_id)), Received)
    # re-routed by a broker: to Carol's inbox, or onto the broadcast topic
    assert reason(verifier(CAROL).verify(frame, TOPICS.inbox(CAROL.node_id))) == "misdirected"
    assert reason(verifier(BOB).verify(frame, TOPICS.consensus)) == "misdirected"
    broadcast = seal(envelope(seq=6), ALICE).frame
    assert reason(verifier(BOB).verify(broadcast, TOPICS.inbox(BOB.node_id))) == "misdirected"
    assert reason(verifier(BOB).verify(broadcast, "xon/devnet/elsewhere")) == "misdirected"
    assert reason(verifier(BOB).verify(broadcast, "xon/other/consensus")) == "misdirected"


def test_open_frame_is_stateless_for_embedded_frames() -> None:
    frame = seal(envelope(), ALICE).frame
    first = open_frame(frame, network=NET, roster=ROSTER)
    second = open_frame(frame, network=NET, roster=ROSTER)
    assert not isinstance(first, Rejected) and first == second
    assert reason(open_frame(frame, network=NET, roster=Roster.of(BOB))) == "unknown_sender"
    assert reason(open_frame(frame, network=NET, roster=ROSTER, max_frame=10)) == "oversized"


# -- receiving: every drop reason ----------------------------------------------------


def test_oversized_is_checked_before_anything_else() -> None:
    v = verifier(max_frame=300)
    good = seal(envelope(payload={"pad": "x" * 400}), ALICE).frame
    assert reason(v.verify(good, TOPICS.consensus)) == "oversized"
    assert reason(v.verify(b"\xff" * 301, TOPICS.consensus)) == "oversized"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe{}",
        b"[1,2,3]",
        b'{"a":1,"a":2}',
        body_dict(payload={"price": 1.5}),
        body_dict(payload={"x": float("nan")}),
        b'{"net":"devnet","payload":{},"sender":"' + ALICE.node_id.encode() + b'","seq":1}',
        body_dict(extra=1),
        body_dict(seq=True),
        body_dict(seq=0),
        body_dict(seq=2**63),
        body_dict(seq="1"),
        body_dict(payload=[1]),
        body_dict(type=7),
        body_dict(to=5),
        body_dict(v="1"),
        body_dict(net=None),
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_member_signed_garbage_is_malformed(body: bytes) -> None:
    assert reason(verifier().verify(signed_body(body), TOPICS.consensus)) == "malformed"


def test_short_frames_are_malformed() -> None:
    for frame in (b"", b"\x00" * 65, ALICE.sign(signing_domain(NET), b"{") + b"{"):
        assert reason(verifier().verify(frame, TOPICS.consensus)) == "malformed"


def test_a_signature_by_anyone_but_the_claimed_sender_is_bad_signature() -> None:
    env = envelope(ALICE)
    body = encode_body(env)
    forged = MALLORY.sign(signing_domain(NET), body) + body
    assert reason(verifier().verify(forged, TOPICS.consensus)) == "bad_signature"
    by_member = BOB.sign(signing_domain(NET), body) + body
    assert reason(verifier().verify(by_member, TOPICS.consensus)) == "bad_signature"
    unsigned = b"\x00" * 65 + body
    assert reason(verifier().verify(unsigned, TOPICS.consensus)) == "bad_signature"


def test_a_frame_signed_for_another_network_does_not_verify_here() -> None:
    other = seal(envelope(net="testnet"), ALICE).frame
    # the domain differs, so the signature recovers a stranger: not Alice
    assert reason(verifier().verify(other, TOPICS.consensus)) == "bad_signature"


def test_wrong_network_and_version_inside_a_valid_signature() -> None:
    wrong_net = signed_body(body_dict(net="testnet"))
    assert reason(verifier().verify(wrong_net, TOPICS.consensus)) == "wrong_network"
    future = signed_body(body_dict(v=2, extra="field"))
    assert reason(verifier().verify(future, TOPICS.consensus)) == "bad_version"


def test_unknown_sender_and_unknown_type() -> None:
    outsider = seal(envelope(MALLORY), MALLORY).frame
    assert reason(verifier().verify(outsider, TOPICS.consensus)) == "unknown_sender"
    new_type = signed_body(body_dict(type="dkg_round9"))
    assert reason(verifier().verify(new_type, TOPICS.consensus)) == "unknown_type"


def test_replays_duplicates_and_the_bounded_lru() -> None:
    v = verifier(dedupe_capacity=2)
    first, second, third = (seal(envelope(seq=s), ALICE).frame for s in (10, 20, 30))
    assert isinstance(v.verify(first, TOPICS.consensus), Received)
    assert reason(v.verify(first, TOPICS.consensus)) == "duplicate"
    assert isinstance(v.verify(third, TOPICS.consensus), Received)
    # an older seq from the same sender on the same topic is a replay
    assert reason(v.verify(second, TOPICS.consensus)) == "replayed"
    same_seq_other_body = seal(envelope(seq=30, payload={"other": 1}), ALICE).frame
    assert reason(v.verify(same_seq_other_body, TOPICS.consensus)) == "replayed"
    # evicted from the 2-entry LRU, the first frame is still caught by its seq
    for s in (40, 50):
        assert isinstance(v.verify(seal(envelope(seq=s), ALICE).frame, TOPICS.consensus), Received)
    assert reason(v.verify(first, TOPICS.consensus)) == "replayed"


def test_high_water_is_per_sender_and_topic() -> None:
    v = verifier()
    assert isinstance(
        v.verify(seal(envelope(ALICE, seq=100), ALICE).frame, TOPICS.consensus), Received
    )
    # another sender with a lower seq is fine
    assert isinstance(
        v.verify(seal(envelope(CAROL, seq=5), CAROL).frame, TOPICS.consensus), Received
    )
    # retained reports arrive in broker order: an older seq on another topic is fine
    old_report = seal(envelope(ALICE, seq=50, type=MessageType.FINAL), ALICE).frame
    assert isinstance(v.verify(old_report, TOPICS.report("PRICES"), retained=True), Received)


def test_the_same_frame_on_two_topics_is_delivered_once() -> None:
    v = verifier()
    final = seal(envelope(type=MessageType.FINAL, seq=7), ALICE).frame
    assert isinstance(v.verify(final, TOPICS.consensus), Received)
    assert reason(v.verify(final, TOPICS.report("PRICES"))) == "duplicate"


def test_roster_change_takes_effect_immediately() -> None:
    v = verifier()
    assert isinstance(
        v.verify(seal(envelope(CAROL, seq=1), CAROL).frame, TOPICS.consensus), Received
    )
    v.set_roster(Roster.of(ALICE, BOB))
    assert reason(v.verify(seal(envelope(CAROL, seq=2), CAROL).frame, TOPICS.consensus)) == (
        "unknown_sender"
    )
    v.set_roster(Roster.of(ALICE, BOB, MALLORY))
    assert isinstance(v.verify(seal(envelope(MALLORY), MALLORY).frame, TOPICS.consensus), Received)


# -- topics --------------------------------------------------------------------------


def test_topic_layout_and_matching() -> None:
    assert TOPICS.consensus == "xon/devnet/consensus"
    assert TOPICS.inbox(BOB.node_id) == f"xon/devnet/inbox/{BOB.node_id}"
    assert TOPICS.report("PRICES") == "xon/devnet/reports/PRICES"
    assert TOPICS.device("gpu-1", "heartbeat") == "xon/devnet/devices/gpu-1/heartbeat"
    assert topic_matches(TOPICS.reports_filter, TOPICS.report("UPTIME"))
    assert not topic_matches(TOPICS.reports_filter, TOPICS.consensus)
    assert topic_matches("xon/#", "xon/devnet/consensus") and topic_matches("xon/#", "xon")
    assert not topic_matches("xon/+", "xon/devnet/consensus")
    for bad in ("Dev", "a/b", "", "x" * 33, "+"):
        with pytest.raises(ValueError):
            Topics(bad)
    for kind in ("a/b", "+", "#", ""):
        with pytest.raises(ValueError):
            TOPICS.report(kind)


def test_deeply_nested_body_is_dropped_not_a_crash() -> None:
    # py_ecc (imported by web3) raises the recursion limit to 100,000, so without the
    # depth check this frame would overflow the C stack inside json.loads.
    from oracle.identity import IdentityKey, Roster
    from oracle.transport.envelope import open_frame, signing_domain

    key = IdentityKey.generate()
    body = b"[" * 200_000
    frame = key.sign(signing_domain("testnet"), body) + body
    rejected = open_frame(frame, network="testnet", roster=Roster.of(key))
    assert getattr(rejected, "reason", None) is not None
    assert "nested" in str(getattr(rejected, "detail", ""))
