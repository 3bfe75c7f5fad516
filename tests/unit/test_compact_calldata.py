"""``PriceFeedStore.transmitCompact`` calldata: its byte layout, the round trip, the inputs
it refuses, the choice between it and ABI ``transmit``, and the in-memory chain's model
of the entry point (the same checks and effects as ``transmit``)."""

from __future__ import annotations

import random

import pytest
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregation.errors import EncodingError
from aggregation.frost import sign_with_committee, trusted_dealer_keygen
from aggregation.report import (
    PricesPayload,
    Report,
    ReportKind,
    ValuationsPayload,
    feed_id,
    signing_message,
)
from contracts.encoding import (
    TRANSMIT_COMPACT_SELECTOR,
    compact_prices_calldata,
    decode_compact_prices_calldata,
    transmit_signature,
)
from oracle.chain import CallRequest, ExecutionReverted, address
from oracle.chain.memory import MemoryChain
from oracle.chain.receivers import (
    TRANSMIT_SELECTOR,
    encode_report_calldata,
    encode_transmit,
    latest_epoch_and_round,
)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

H100 = feed_id("H100-SXM/USD-HR")
RTX = feed_id("RTX-4090/USD-HR")
DIGEST = bytes(range(32))
SIGNATURE = bytes(range(128))
I128_MIN, I128_MAX = -(2**127), 2**127 - 1


def prices(
    ids: tuple[bytes, ...], values: tuple[int, ...], *, epoch: int = 1, round_: int = 1
) -> Report:
    payload = PricesPayload(ids, values).encode()
    return Report(DIGEST, epoch, round_, 1_700_000_000, ReportKind.PRICES, payload)


def raw_prices(ids: list[bytes], values: list[int]) -> Report:
    """A PRICES report with a payload PricesPayload would refuse (repeated ids)."""
    payload = abi_encode(["bytes32[]", "int256[]"], [ids, values])
    return Report(DIGEST, 1, 1, 1_700_000_000, ReportKind.PRICES, payload)


# ---------------------------------------------------------------- layout


def test_selector_is_the_cheap_one() -> None:
    assert TRANSMIT_COMPACT_SELECTOR.hex() == "00000029"


def test_layout_field_by_field() -> None:
    report = Report(
        DIGEST,
        0x01020304,
        0x0A0B0C0D,
        0x1122334455667788,
        ReportKind.PRICES,
        PricesPayload((H100, RTX), (2_34000000, -5)).encode(),
    )
    data = compact_prices_calldata(report, SIGNATURE)
    assert len(data) == 4 + 128 + 32 + 4 + 4 + 8 + 2 * (32 + 16) == 276
    assert data[0:4] == bytes.fromhex("00000029")
    assert data[4:36] == SIGNATURE[0:32]  # Rx
    assert data[36:68] == SIGNATURE[32:64]  # Ry
    assert data[68:100] == SIGNATURE[64:96]  # z
    assert data[100:132] == SIGNATURE[96:128]  # group key x
    assert data[132:164] == DIGEST
    assert data[164:168] == bytes.fromhex("01020304")  # epoch
    assert data[168:172] == bytes.fromhex("0a0b0c0d")  # round
    assert data[172:180] == bytes.fromhex("1122334455667788")  # observations timestamp
    assert data[180:212] == b"H100-SXM/USD-HR" + b"\0" * 17
    assert data[212:228] == bytes.fromhex("0000000000000000000000000df28e80")  # 2_34000000
    assert data[228:260] == b"RTX-4090/USD-HR" + b"\0" * 17
    assert data[260:276] == bytes.fromhex("fffffffffffffffffffffffffffffffb")  # -5
    # The same bytes from the encoded report.
    assert compact_prices_calldata(report.encode(), SIGNATURE) == data


def test_int128_bounds_are_encoded_in_sixteen_bytes() -> None:
    data = compact_prices_calldata(prices((H100, RTX), (I128_MIN, I128_MAX)), SIGNATURE)
    assert data[-64:-48] == b"\x80" + b"\0" * 15
    assert data[-16:] == b"\x7f" + b"\xff" * 15
    report, _ = decode_compact_prices_calldata(data)
    assert PricesPayload.decode(report.payload).values == (I128_MIN, I128_MAX)


def test_round_trip() -> None:
    report = prices((H100, RTX), (2_34000000, 44_250000), epoch=3, round_=9)
    assert decode_compact_prices_calldata(compact_prices_calldata(report, SIGNATURE)) == (
        report,
        SIGNATURE,
    )


# ---------------------------------------------------------------- refusals


def test_only_prices_reports() -> None:
    payload = ValuationsPayload((H100,), (1,), (b"\x01" * 32,)).encode()
    valuations = Report(DIGEST, 1, 1, 1, ReportKind.VALUATIONS, payload)
    with pytest.raises(EncodingError, match="PRICES"):
        compact_prices_calldata(valuations, SIGNATURE)


def test_at_least_one_feed() -> None:
    with pytest.raises(EncodingError, match="at least one feed"):
        compact_prices_calldata(prices((), ()), SIGNATURE)


@pytest.mark.parametrize("value", [I128_MAX + 1, I128_MIN - 1, 2**255 - 1, -(2**255)])
def test_values_beyond_int128(value: int) -> None:
    with pytest.raises(EncodingError, match="int128"):
        compact_prices_calldata(prices((H100, RTX), (1, value)), SIGNATURE)


@pytest.mark.parametrize("length", [0, 65, 96, 127, 129])
def test_signature_is_the_128_byte_argument(length: int) -> None:
    with pytest.raises(EncodingError, match="128 bytes"):
        compact_prices_calldata(prices((H100,), (1,)), b"\x01" * length)


def test_reports_that_are_not_canonical_prices() -> None:
    with pytest.raises(EncodingError):
        compact_prices_calldata(b"\x00" * 100, SIGNATURE)
    with pytest.raises(EncodingError):  # a repeated feed: the store reverts DuplicateFeed
        compact_prices_calldata(raw_prices([H100, H100], [1, 2]), SIGNATURE)
    bad_payload = Report(DIGEST, 1, 1, 1, ReportKind.PRICES, b"\x01\x02")
    with pytest.raises(EncodingError):
        compact_prices_calldata(bad_payload, SIGNATURE)
    # Bytes that decode but are not the canonical encoding the store would rebuild (and
    # sign-check): a word after the report.
    canonical = prices((H100,), (1,)).encode()
    with pytest.raises(EncodingError, match="canonical"):
        compact_prices_calldata(canonical + b"\x00" * 32, SIGNATURE)
    assert encode_report_calldata(canonical + b"\x00" * 32, SIGNATURE)[:4] == TRANSMIT_SELECTOR


GOOD = compact_prices_calldata(prices((H100, RTX), (1, -1)), SIGNATURE)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        TRANSMIT_COMPACT_SELECTOR,
        GOOD[:180],  # no feed
        GOOD[:-1],  # truncated
        GOOD[:-48][:-1],
        GOOD + b"\x00",  # a byte after the last feed
        GOOD + b"\x00" * 47,
        b"\x00\x00\x00\x2a" + GOOD[4:],  # another selector
        TRANSMIT_SELECTOR + GOOD[4:],
        encode_transmit(prices((H100,), (1,)).encode(), SIGNATURE),
    ],
    ids=[
        "empty",
        "selector-only",
        "no-feed",
        "truncated",
        "truncated-feed",
        "trailing-byte",
        "trailing-47",
        "wrong-selector",
        "transmit-selector",
        "abi-transmit",
    ],
)
def test_malformed_calldata(data: bytes) -> None:
    with pytest.raises(EncodingError, match="not transmitCompact calldata"):
        decode_compact_prices_calldata(data)


@pytest.mark.parametrize("data", ["00000029", None, 41, [0, 0, 0, 0x29]])
def test_not_bytes(data: object) -> None:
    with pytest.raises(EncodingError):
        decode_compact_prices_calldata(data)  # type: ignore[arg-type]


def test_bytes_like_input() -> None:
    assert decode_compact_prices_calldata(bytearray(GOOD)) == decode_compact_prices_calldata(GOOD)
    assert decode_compact_prices_calldata(memoryview(GOOD))[1] == SIGNATURE


def test_repeated_feed_decodes_as_the_store_rebuilds_it() -> None:
    head = GOOD[:180]
    entry = H100 + (7).to_bytes(16, "big")
    report, signature = decode_compact_prices_calldata(head + entry + entry)
    assert (report, signature) == (raw_prices([H100, H100], [7, 7]), SIGNATURE)
    with pytest.raises(EncodingError, match="duplicate"):
        PricesPayload.decode(report.payload)


# ---------------------------------------------------------------- properties

feed_ids = st.binary(min_size=32, max_size=32)
int128s = st.integers(I128_MIN, I128_MAX)


@st.composite
def prices_reports(draw: st.DrawFn) -> Report:
    ids = draw(st.lists(feed_ids, min_size=1, max_size=8, unique=True))
    values = draw(st.lists(int128s, min_size=len(ids), max_size=len(ids)))
    return Report(
        draw(st.binary(min_size=32, max_size=32)),
        draw(st.integers(0, 2**32 - 1)),
        draw(st.integers(0, 2**32 - 1)),
        draw(st.integers(0, 2**64 - 1)),
        ReportKind.PRICES,
        PricesPayload(tuple(ids), tuple(values)).encode(),
    )


@SETTINGS
@given(prices_reports(), st.binary(min_size=128, max_size=128))
def test_decode_inverts_encode(report: Report, signature: bytes) -> None:
    data = compact_prices_calldata(report, signature)
    assert decode_compact_prices_calldata(data) == (report, signature)
    assert len(data) == 180 + 48 * len(PricesPayload.decode(report.payload).feed_ids)
    # From the report's bytes as well (what the transmitter holds).
    assert compact_prices_calldata(report.encode(), signature) == data
    assert encode_report_calldata(report.encode(), signature) == data


@SETTINGS
@given(st.binary(max_size=600), st.booleans())
def test_garbage_raises_encoding_error_only(data: bytes, with_selector: bool) -> None:
    if with_selector:
        data = TRANSMIT_COMPACT_SELECTOR + data
    try:
        report, signature = decode_compact_prices_calldata(data)
    except EncodingError:
        return
    # Whatever decodes is a PRICES report that encodes back to the same bytes (the layout
    # has no redundancy), unless it repeats a feed id.
    assert report.kind is ReportKind.PRICES and len(signature) == 128
    ids = abi_decode(["bytes32[]", "int256[]"], report.payload)[0]
    if len(set(ids)) == len(ids):
        assert compact_prices_calldata(report, signature) == data


@SETTINGS
@given(st.integers(1, 6), st.data())
def test_every_well_sized_call_decodes(n: int, data: st.DataObject) -> None:
    body = data.draw(st.binary(min_size=176 + 48 * n, max_size=176 + 48 * n))
    report, signature = decode_compact_prices_calldata(TRANSMIT_COMPACT_SELECTOR + body)
    assert signature == body[:128]
    assert len(abi_decode(["bytes32[]", "int256[]"], report.payload)[0]) == n


# ---------------------------------------------------------------- which entry point


def test_prices_go_compact_everything_else_abi() -> None:
    report = prices((H100,), (5,)).encode()
    assert encode_report_calldata(report, SIGNATURE) == compact_prices_calldata(report, SIGNATURE)
    fallbacks = [
        Report(DIGEST, 1, 1, 1, ReportKind.VALUATIONS, b"").encode(),
        prices((), ()).encode(),
        prices((H100,), (I128_MAX + 1,)).encode(),
        raw_prices([H100, H100], [1, 2]).encode(),
        b"not a report",
    ]
    for other in fallbacks:
        data = encode_report_calldata(other, SIGNATURE)
        assert data[:4] == TRANSMIT_SELECTOR
        assert abi_decode(["bytes", "bytes"], data[4:]) == (other, SIGNATURE)
    # A signature of another length: ABI transmit, which reverts MalformedSignature().
    assert encode_report_calldata(report, SIGNATURE[:65]) == encode_transmit(report, SIGNATURE[:65])


# ---------------------------------------------------------------- the in-memory chain

STORE = address("0x" + "5a" * 20)
REGISTRY = address("0x" + "5b" * 20)
RNG = random.Random(11)
DEALER = trusted_dealer_keygen(3, 2, RNG.randbytes)
SENDER = address(Account.create().address)


def sign(report: bytes, to: str = STORE) -> bytes:
    public = DEALER.public_key_package
    message = signing_message(31337, to, report)
    signature = sign_with_committee(DEALER.key_packages, public, [1, 3], message, RNG.randbytes)
    return transmit_signature(signature, public.chain_key.x)


def memory_chain() -> MemoryChain:
    chain = MemoryChain(group_key=DEALER.public_key_package.group_key)
    chain.add_receiver(STORE, int(ReportKind.PRICES))
    chain.add_receiver(REGISTRY, int(ReportKind.VALUATIONS))
    return chain


async def send(chain: MemoryChain, data: bytes, to: str = STORE) -> int:
    account = Account.create()
    tx = {
        "type": 2,
        "chainId": 31337,
        "nonce": 0,
        "to": to,
        "value": 0,
        "gas": 200_000,
        "maxFeePerGas": 10 * 10**9,
        "maxPriorityFeePerGas": 10**9,
        "data": data,
    }
    raw = bytes(account.sign_transaction(tx).raw_transaction)
    receipt = await chain.receipt(await chain.send_raw_transaction(raw))
    assert receipt is not None
    return receipt.status


async def reverts(chain: MemoryChain, data: bytes, to: str = STORE) -> str:
    with pytest.raises(ExecutionReverted) as caught:
        await chain.call(CallRequest(SENDER, address(to), data))
    return caught.value.error


async def test_memory_chain_takes_compact_calls_like_transmit() -> None:
    chain = memory_chain()
    report = prices((H100, RTX), (2_34000000, 44_250000), epoch=2, round_=1).encode()
    signature = sign(report)  # signed for the ABI path
    data = compact_prices_calldata(report, signature)
    call = CallRequest(SENDER, STORE, data)
    assert await chain.call(call) == b""
    assert await chain.estimate_gas(call) > 21_000
    assert await send(chain, data) == 1
    assert await latest_epoch_and_round(chain, STORE, SENDER) == (2, 1)
    # The same report again, by either entry point: NotIncreasing, nothing changes.
    assert await reverts(chain, data) == "NotIncreasing(2, 1, 2, 1)"
    assert await reverts(chain, encode_transmit(report, signature)) == "NotIncreasing(2, 1, 2, 1)"
    assert await send(chain, data) == 0
    assert chain.latest(STORE) == (2, 1)

    # The next report: a signature of another report or for another contract is refused.
    nxt = prices((H100,), (2_40000000,), epoch=2, round_=2).encode()
    assert await reverts(chain, compact_prices_calldata(nxt, signature)) == "BadSignature()"
    elsewhere = compact_prices_calldata(nxt, sign(nxt, REGISTRY))
    assert await reverts(chain, elsewhere) == "BadSignature()"
    assert await send(chain, compact_prices_calldata(nxt, sign(nxt))) == 1
    assert chain.latest(STORE) == (2, 2)


async def test_memory_chain_malformed_compact_call() -> None:
    chain = memory_chain()
    report = prices((H100,), (1,)).encode()
    data = compact_prices_calldata(report, sign(report))
    for bad in (data[:-1], data + b"\x00", data[:180]):
        assert await reverts(chain, bad) == "MalformedReport()"
        assert await send(chain, bad) == 0
    chain.set_paused(STORE, True)
    assert await reverts(chain, data) == "Paused()"
    chain.set_paused(STORE, False)
    # Only the price store has the entry point; elsewhere: no such function, no data.
    assert await reverts(chain, data, REGISTRY) == "revert(0x)"
    assert chain.latest(STORE) == chain.latest(REGISTRY) == (0, 0)
