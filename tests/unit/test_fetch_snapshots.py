"""The snapshot / replay directory format (feeds.snapshots)."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feeds.errors import FetchError
from feeds.model import HttpRequest, RawResponse, SourceId
from feeds.snapshots import (
    REDACTED,
    ReplayBook,
    SnapshotError,
    SnapshotStore,
    load_manifest,
    sha256_hex,
    verify_dir,
)

T0 = datetime(2026, 10, 7, 12, 0, 0, tzinfo=UTC)
SECRET = "sk-live-0123456789"


def response(url: str, body: bytes, *, status: int = 200, at: datetime = T0,
             req_body: bytes | None = None) -> RawResponse:  # fmt: skip
    return RawResponse(
        request=HttpRequest("POST" if req_body else "GET", url, {}, req_body),
        status=status,
        headers={"Content-Type": "application/json", "Retry-After": "3", "Set-Cookie": "x=y"},
        body=body,
        fetched_at=at,
    )


def test_manifest_shape_and_bodies(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    e0 = store.add(SourceId("a"), response("https://x.test/1", b'{"n": 1}'))
    e1 = store.add(SourceId("b"), response("https://x.test/2", b"{}", req_body=b'{"q": 1}'))
    doc = json.loads((tmp_path / "manifest.json").read_text())
    assert doc["format"] == "xon-replay/1"
    assert doc["entries"][0] == {
        "source": "a",
        "method": "GET",
        "url": "https://x.test/1",
        "request_body_sha256": None,
        "status": 200,
        "headers": {"content-type": "application/json", "retry-after": "3"},
        "body_sha256": sha256_hex(b'{"n": 1}'),
        "fetched_at": "2026-10-07T12:00:00Z",
        "seq": 0,
    }
    assert doc["entries"][1]["request_body_sha256"] == sha256_hex(b'{"q": 1}')
    assert (e0.seq, e1.seq) == (0, 1)
    gz = tmp_path / "bodies" / f"{e0.body_sha256}.gz"
    assert gzip.decompress(gz.read_bytes()) == b'{"n": 1}'
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_same_body_stored_once_and_reopen_continues_seq(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.add(SourceId("a"), response("https://x.test/1", b"same"))
    store.add(SourceId("a"), response("https://x.test/2", b"same"))
    assert len(list((tmp_path / "bodies").iterdir())) == 1
    again = SnapshotStore(tmp_path)
    entry = again.add(SourceId("a"), response("https://x.test/3", b"other"))
    assert entry.seq == 2
    assert [e.seq for e in load_manifest(tmp_path)] == [0, 1, 2]


def test_store_is_reproducible(tmp_path: Path) -> None:
    for name in ("one", "two"):
        store = SnapshotStore(tmp_path / name)
        store.add(SourceId("a"), response("https://x.test/1", b"payload" * 100))
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.*"))
    for rel in files:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes()


def test_api_keys_are_redacted_and_replay_without_the_key(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path, secrets=(SECRET,))
    store.add(
        SourceId("gcp"),
        response(
            f"https://x.test/skus?key={SECRET}", b"{}", req_body=f'{{"k":"{SECRET}"}}'.encode()
        ),
    )
    raw = (tmp_path / "manifest.json").read_text()
    assert SECRET not in raw
    assert f"key={REDACTED}" in raw
    # Replay mode builds the request with the placeholder in place of the key.
    book = ReplayBook(tmp_path)
    request = HttpRequest(
        "POST", f"https://x.test/skus?key={REDACTED}", {}, f'{{"k":"{REDACTED}"}}'.encode()
    )
    assert book.next_response(SourceId("gcp"), request).body == b"{}"


def test_replay_serves_in_order_and_reports_unrecorded(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    url = "https://x.test/p"
    store.add(SourceId("a"), response(url, b"first", status=429))
    store.add(SourceId("a"), response(url, b"second", at=T0 + timedelta(seconds=5)))
    book = ReplayBook(tmp_path)
    assert book.recorded_until == T0 + timedelta(seconds=5)
    req = HttpRequest("GET", url)
    first = book.next_response(SourceId("a"), req)
    assert (first.status, first.body, first.fetched_at) == (429, b"first", T0)
    assert first.headers["retry-after"] == "3"
    assert book.next_response(SourceId("a"), req).body == b"second"
    with pytest.raises(FetchError) as exc:
        book.next_response(SourceId("a"), req)
    assert exc.value.reason == "not_recorded"
    with pytest.raises(FetchError):
        ReplayBook(tmp_path).next_response(SourceId("other"), req)  # wrong source


def test_verify_detects_a_tampered_body(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    entry = store.add(SourceId("a"), response("https://x.test/1", b"honest"))
    assert len(verify_dir(tmp_path)) == 1
    (tmp_path / "bodies" / f"{entry.body_sha256}.gz").write_bytes(gzip.compress(b"forged"))
    with pytest.raises(SnapshotError, match="does not hash"):
        verify_dir(tmp_path)
    book = ReplayBook(tmp_path)
    with pytest.raises(FetchError) as exc:
        book.next_response(SourceId("a"), HttpRequest("GET", "https://x.test/1"))
    assert exc.value.reason == "replay_corrupt"


@pytest.mark.parametrize(
    "doc",
    [
        {"format": "xon-replay/2", "entries": []},
        {"format": "xon-replay/1"},
        {"format": "xon-replay/1", "entries": [{"source": "a"}]},
        {
            "format": "xon-replay/1",
            "entries": [
                {
                    "source": "a", "method": "GET", "url": "u", "request_body_sha256": None,
                    "status": 200, "headers": {}, "body_sha256": "nothex",
                    "fetched_at": "2026-10-07T12:00:00Z", "seq": 0,
                }
            ],
        },
    ],
)  # fmt: skip
def test_bad_manifests_are_rejected(tmp_path: Path, doc: object) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(SnapshotError):
        load_manifest(tmp_path)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="no manifest"):
        ReplayBook(tmp_path)


def test_naive_times_are_refused(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    with pytest.raises(SnapshotError):
        store.add(SourceId("a"), response("https://x.test/1", b"x", at=datetime(2026, 1, 1)))
