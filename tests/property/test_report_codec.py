"""The report envelope and payload codecs round-trip and reject garbage with EncodingError."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregation.errors import EncodingError
from aggregation.report import (
    DeviceStatus,
    HardwarePayload,
    PricesPayload,
    Report,
    ReportKind,
    UptimePayload,
    ValuationsPayload,
    feed_id,
    feed_name,
    signing_message,
)

b32 = st.binary(min_size=32, max_size=32)
u32 = st.integers(0, 2**32 - 1)
reports = st.builds(
    Report,
    config_digest=b32,
    epoch=u32,
    round=u32,
    observations_timestamp=st.integers(0, 2**64 - 1),
    kind=st.sampled_from(ReportKind),
    payload=st.binary(max_size=300),
)
names = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=32
)


@given(reports)
def test_report_round_trips(report: Report) -> None:
    encoded = report.encode()
    assert Report.decode(encoded) == report
    # head (6 words) + length word + payload padded to a word boundary
    assert len(encoded) == 7 * 32 + (len(report.payload) + 31) // 32 * 32


@given(st.binary(max_size=600))
@settings(max_examples=300)
def test_garbage_never_escapes_as_another_exception(data: bytes) -> None:
    with contextlib.suppress(EncodingError):
        Report.decode(data)


@given(reports, st.integers(0, 7 * 32 - 1), st.integers(1, 255))
def test_any_header_byte_change_changes_or_breaks_the_report(
    report: Report, index: int, delta: int
) -> None:
    encoded = bytearray(report.encode())
    encoded[index] = (encoded[index] + delta) % 256
    try:
        decoded = Report.decode(bytes(encoded))
    except EncodingError:
        return
    assert decoded != report


@given(st.lists(st.tuples(names, st.integers(-(2**255), 2**255 - 1)), unique_by=lambda x: x[0]))
def test_prices_payload_round_trips(rows: list[tuple[str, int]]) -> None:
    payload = PricesPayload(tuple(feed_id(n) for n, _ in rows), tuple(v for _, v in rows))
    decoded = PricesPayload.decode(payload.encode())
    assert decoded == payload
    assert [feed_name(f) for f in decoded.feed_ids] == [n for n, _ in rows]


@given(st.lists(st.tuples(b32, st.integers(0, 2**256 - 1), b32), unique_by=lambda x: x[0]))
def test_valuations_payload_round_trips(rows: list[tuple[bytes, int, bytes]]) -> None:
    payload = (
        ValuationsPayload(*(tuple(col) for col in zip(*rows, strict=True)))
        if rows
        else (ValuationsPayload((), (), ()))
    )
    assert ValuationsPayload.decode(payload.encode()) == payload


@given(st.lists(st.tuples(b32, st.sampled_from(DeviceStatus), b32), unique_by=lambda x: x[0]))
def test_hardware_payload_round_trips(rows: list[tuple[bytes, DeviceStatus, bytes]]) -> None:
    ids = tuple(r[0] for r in rows)
    payload = HardwarePayload(ids, tuple(r[1] for r in rows), tuple(r[2] for r in rows))
    assert HardwarePayload.decode(payload.encode()) == payload


@given(st.integers(0, 2**64 - 1), b32, u32)
def test_uptime_payload_round_trips(epoch: int, root: bytes, count: int) -> None:
    payload = UptimePayload(epoch, root, count)
    assert UptimePayload.decode(payload.encode()) == payload


def test_feed_id_is_left_aligned_ascii() -> None:
    assert feed_id("H100-SXM/USD-HR") == b"H100-SXM/USD-HR" + b"\0" * 17
    for bad in ("", "x" * 33, "H100 SXM", "H100-SXM/USD-HR\n", "é"):
        with pytest.raises(EncodingError):
            feed_id(bad)
    with pytest.raises(EncodingError):
        feed_name(b"AB\0C" + b"\0" * 28)


def test_payload_rules() -> None:
    one = feed_id("A")
    with pytest.raises(EncodingError, match="duplicate"):
        PricesPayload((one, one), (1, 2))
    with pytest.raises(EncodingError, match="length"):
        PricesPayload((one,), (1, 2))
    with pytest.raises(EncodingError, match="int256"):
        PricesPayload((one,), (2**255,))
    with pytest.raises(EncodingError):
        Report(b"\0" * 32, 2**32, 0, 0, ReportKind.PRICES, b"")


def test_non_canonical_encoding_is_refused() -> None:
    payload = PricesPayload((feed_id("A"),), (5,)).encode()
    dirty = bytearray(payload)
    dirty[-32] = 0x01  # a non-zero high byte in a value that decodes to a different int
    tampered = PricesPayload.decode(bytes(dirty))
    assert tampered.values != (5,)
    padded = payload + b"\0" * 32  # trailing junk: decodes, but is not canonical
    with pytest.raises(EncodingError, match="non-canonical"):
        PricesPayload.decode(padded)


def test_signing_message_binds_chain_and_contract() -> None:
    report = Report(b"\1" * 32, 1, 2, 3, ReportKind.PRICES, b"").encode()
    a = "0x" + "11" * 20
    m = signing_message(1, a, report)
    assert len(m) == 32
    assert m != signing_message(2, a, report)
    assert m != signing_message(1, "0x" + "12" * 20, report)
    assert m == signing_message(1, bytes.fromhex("11" * 20), report)
    with pytest.raises(EncodingError):
        signing_message(1, "0x1234", report)
