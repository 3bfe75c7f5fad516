"""The observation pipeline (feeds.observe) over the committed replay recording."""

from __future__ import annotations

from pathlib import Path

from feeds.config import load_default_config, parse_config
from feeds.fetch import Fetcher, SourceFailure
from feeds.observe import observe, secret_env_vars
from feeds.snapshots import REDACTED, ReplayBook

REPLAY = Path(__file__).resolve().parents[2] / "feeds" / "replay" / "default"


async def test_missing_api_key_is_skipped_and_listed() -> None:
    config = load_default_config()
    book = ReplayBook(REPLAY)
    env = dict.fromkeys(secret_env_vars(config), REDACTED)
    del env["RUNPOD_API_KEY"]
    result = await observe(config, Fetcher.for_replay(book), env, book.recorded_until)
    runpod = result.outcomes["runpod"]  # type: ignore[index]
    assert isinstance(runpod, SourceFailure)
    assert (runpod.reason, runpod.error) == ("missing_api_key", "MissingApiKey")
    h100 = next(f for f in result.feeds if f.feed.id == "H100-SXM/USD-HR")
    assert h100.result.value is not None
    assert ("runpod", "missing_api_key") in {
        (d.source, d.reason) for d in h100.result.sources_dropped
    }
    assert "runpod" not in h100.result.sources_used


def test_secret_env_vars_of_the_default_config() -> None:
    assert set(secret_env_vars(load_default_config())) == {
        "RUNPOD_API_KEY",
        "TENSORDOCK_API_KEY",
        "LAMBDA_API_KEY",
        "GCP_API_KEY",
    }


async def test_feed_filters_narrow_a_source() -> None:
    base = {
        "sources": {
            "vastai": {"kind": "vastai"},
            "akash": {"kind": "akash"},
            "tensordock": {"kind": "tensordock"},
        },
        "feeds": [
            {
                "id": "RTX-4090/USD-HR",
                "model": "RTX-4090",
                "kind": "USD-HR",
                "sources": ["vastai", "akash", "tensordock"],
            }
        ],
    }
    env = {"TENSORDOCK_API_KEY": REDACTED}
    book = ReplayBook(REPLAY)
    plain = await observe(parse_config(base), Fetcher.for_replay(book), env, book.recorded_until)
    values = dict(plain.feeds[0].result.source_values)

    base["feeds"][0]["filters"] = {"vastai": {"min_gpus": 1000}}  # type: ignore[index]
    book = ReplayBook(REPLAY)
    narrowed = await observe(parse_config(base), Fetcher.for_replay(book), env, book.recorded_until)
    result = narrowed.feeds[0].result
    assert "vastai" in values
    assert ("vastai", "no_offers") in {(d.source, d.reason) for d in result.sources_dropped}
    assert result.value is None  # two sources left < min_sources 3
