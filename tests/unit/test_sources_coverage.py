"""The recorded default sources cover each default feed with >= 3 independent sources."""

from __future__ import annotations

import pytest

from feeds.model import PriceKind
from tests.unit.sources_fixtures import DEFAULT_SOURCES, replay_source

# Sources backed by the same provider count once (two AWS shapes, two TensorDock APIs).
PROVIDER = {
    "aws_pricelist": "aws",
    "tensordock_v0": "tensordock",
}

DEFAULT_FEEDS = [
    ("H100-SXM", PriceKind.RENTAL_HOURLY),
    ("H100-PCIE", PriceKind.RENTAL_HOURLY),
    ("A100-SXM-80GB", PriceKind.RENTAL_HOURLY),
    ("RTX-4090", PriceKind.RENTAL_HOURLY),
    ("H100-SXM", PriceKind.HARDWARE_NEW),
    ("H100-SXM", PriceKind.HARDWARE_USED),
]


def _providers_with_offers() -> dict[tuple[str, PriceKind], set[str]]:
    out: dict[tuple[str, PriceKind], set[str]] = {}
    for source_id in DEFAULT_SOURCES:
        for result in replay_source(source_id):
            for offer in result.offers:
                out.setdefault((offer.model, offer.kind), set()).add(
                    PROVIDER.get(source_id, source_id)
                )
    return out


COVERAGE = _providers_with_offers()


@pytest.mark.parametrize(("model", "kind"), DEFAULT_FEEDS, ids=str)
def test_default_feed_has_three_independent_sources(model: str, kind: PriceKind) -> None:
    providers = COVERAGE.get((model, kind), set())
    assert len(providers) >= 3, (model, kind, providers)


def test_expected_coverage_table() -> None:
    """The table the README documents."""
    assert COVERAGE[("H100-SXM", PriceKind.RENTAL_HOURLY)] == {
        "vastai", "runpod", "azure", "aws", "gcp", "oci", "lambda", "tensordock", "akash",
    }  # fmt: skip
    assert COVERAGE[("H100-PCIE", PriceKind.RENTAL_HOURLY)] == {
        "vastai", "runpod", "lambda", "tensordock", "akash",
    }  # fmt: skip
    assert COVERAGE[("A100-SXM-80GB", PriceKind.RENTAL_HOURLY)] == {
        "vastai", "runpod", "azure", "aws", "gcp", "oci", "lambda", "tensordock", "akash",
    }  # fmt: skip
    assert COVERAGE[("RTX-4090", PriceKind.RENTAL_HOURLY)] == {
        "vastai", "runpod", "tensordock", "akash",
    }  # fmt: skip
    venues = {"comparables_broker", "comparables_marketplace", "comparables_auction"}
    assert COVERAGE[("H100-SXM", PriceKind.HARDWARE_NEW)] == venues
    assert COVERAGE[("H100-SXM", PriceKind.HARDWARE_USED)] == venues
