from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from feeds.config import (
    feed_id_bytes32,
    load_config,
    load_default_config,
    parse_config,
)
from feeds.errors import ConfigError
from feeds.model import PriceKind
from feeds.sources import SOURCE_KINDS


def minimal(**feed: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "H100-SXM/USD-HR",
        "model": "H100-SXM",
        "kind": "USD-HR",
        "sources": ["a", "b", "c"],
    }
    base.update(feed)
    return {
        "sources": {n: {"kind": "vastai"} for n in ("a", "b", "c")},
        "feeds": [base],
    }


def test_defaults_apply_and_feed_values_win() -> None:
    data = minimal(min_sources=2)
    data["defaults"] = {"max_age_s": 900, "decimals": 6}
    feed = parse_config(data).feeds[0]
    assert (feed.min_sources, feed.max_age_s, feed.decimals) == (2, 900, 6)
    assert (feed.deviation_bps, feed.heartbeat_s) == (50, 86_400)
    assert feed.kind is PriceKind.RENTAL_HOURLY


def test_feed_id_bytes32() -> None:
    assert feed_id_bytes32("H100-SXM/USD-HR") == b"H100-SXM/USD-HR" + b"\x00" * 17
    assert len(feed_id_bytes32("X" * 32)) == 32
    for bad in ("X" * 33, "H100 SXM/USD", "H100-SXM/USD-HR\u00e9", ""):
        with pytest.raises(ConfigError):
            feed_id_bytes32(bad)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (minimal(id="H100-SXM/USD"), "must be '<model>/<kind>'"),
        (minimal(id="A" * 33), "at most 32 fit a bytes32"),
        (minimal(model="H100", id="H100/USD-HR"), "unknown model 'H100'"),
        (minimal(kind="EUR-HR"), "feeds[0].kind"),
        (minimal(sources=["a", "a", "b"]), "listed twice"),
        (minimal(min_sources=4), "min_sources 4 > 3 sources"),
        (minimal(sources=["a", "b", "zz"], min_sources=1), "undeclared sources ['zz']"),
        (minimal(filters={"zz": {}}), "filters for unlisted sources"),
        (minimal(max_age_s=0), "feeds[0].max_age_s"),
        (minimal(decimals=19), "feeds[0].decimals"),
        (minimal(surprise=1), "feeds[0].surprise: Extra inputs are not permitted"),
        ({"sources": {}, "feeds": []}, "feeds: "),
        ({**minimal(), "defaults": {"max_age_s": -5}}, "defaults.max_age_s"),
    ],
)
def test_clear_errors(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(data, "test.toml")
    assert message in str(exc.value)
    assert str(exc.value).startswith("test.toml: ")


def test_duplicate_feed_ids() -> None:
    data = minimal()
    data["feeds"].append(dict(data["feeds"][0]))
    with pytest.raises(ConfigError, match="duplicate feed ids"):
        parse_config(data)


def test_toml_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    path.write_text("[[feeds]\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_filters_parse(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    path.write_text(
        """
[sources.vast]
kind = "vastai"
options = { min_reliability = "0.97" }

[[feeds]]
id = "H100-SXM/USD-HR"
model = "H100-SXM"
kind = "USD-HR"
sources = ["vast"]
min_sources = 1
[feeds.filters.vast]
attributes = { verification = "verified" }
min_gpus = 8
"""
    )
    config = load_config(path)
    flt = config.feeds[0].filters["vast"]
    assert (flt.attributes, flt.min_gpus, flt.max_gpus) == ({"verification": "verified"}, 8, None)
    assert config.sources["vast"].options == {"min_reliability": "0.97"}


def test_default_config_covers_the_required_feeds() -> None:
    config = load_default_config()
    ids = {f.id for f in config.feeds}
    assert {
        "H100-SXM/USD-HR",
        "H100-PCIE/USD-HR",
        "A100-SXM-80GB/USD-HR",
        "RTX-4090/USD-HR",
        "H100-SXM/USD",
        "H100-SXM/USD-USED",
    } <= ids
    for feed in config.feeds:
        assert len(feed.bytes32) == 32
        assert feed.min_sources >= 3
    for sid, src in config.used_sources().items():
        # Every source is a known kind with valid options (parsing them raises otherwise).
        SOURCE_KINDS[src.kind].parse_options(sid, src.options)
