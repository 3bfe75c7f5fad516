"""Errors raised by the feeds package.

::

    XonError (aggregation.errors)
    └── FeedError
        ├── ConfigError          a feed or source configuration that cannot work
        ├── MissingApiKey        a source needs a key whose env var is unset (source is skipped)
        ├── UnknownGpuName       a provider string the registry does not recognise (never guessed)
        └── SourceError          one source failed; carries ``source`` and a stable ``reason``
            ├── FetchError       transport: timeout, connection refused, HTTP status, rate limited
            └── ParseError       the body is not the shape the adapter expects
"""

from __future__ import annotations

from aggregation.errors import XonError


class FeedError(XonError):
    """Root of the feeds package's errors."""


class ConfigError(FeedError):
    """A feed or source configuration that cannot work (e.g. an empty GCP catalog)."""


class MissingApiKey(FeedError):
    def __init__(self, source: str, env_var: str) -> None:
        super().__init__(f"source {source!r} skipped: API key env var {env_var} is not set")
        self.source = source
        self.env_var = env_var


class UnknownGpuName(FeedError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown GPU name {name!r}")
        self.name = name


class SourceError(FeedError):
    """One source failed. ``reason`` is a short stable label usable as a metric label."""

    def __init__(self, source: str, reason: str, detail: str = "") -> None:
        super().__init__(f"{source}: {reason}" + (f" ({detail})" if detail else ""))
        self.source = source
        self.reason = reason
        self.detail = detail


class FetchError(SourceError):
    """Transport-level failure: timeout, connection error, HTTP status, rate limiting."""


class ParseError(SourceError):
    """The response body is not the shape the adapter expects."""
