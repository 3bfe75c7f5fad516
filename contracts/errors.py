"""Errors of the contracts package.

::

    XonError (aggregation.errors)
    └── ContractsError
        ├── ArtifactError   a committed artifact is missing or malformed
        └── DeployError     a deployment transaction failed or reverted
"""

from __future__ import annotations

from aggregation.errors import XonError


class ContractsError(XonError):
    """Root of the contracts package's errors."""


class ArtifactError(ContractsError):
    """A committed build artifact is missing or malformed."""


class DeployError(ContractsError):
    """A deployment transaction failed, reverted or produced no contract."""
