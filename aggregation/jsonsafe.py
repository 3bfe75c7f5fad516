"""JSON from untrusted peers without a stack overflow.

``json.loads`` recurses in C for every nested array or object and relies on Python's
recursion limit to stop. ``py_ecc`` (imported by web3) raises that limit to 100,000 for
the whole process, so a body of ~100k ``[`` overflows the C stack and kills the process
with SIGSEGV instead of raising. Every parser of remote JSON (provider responses,
transport frames) checks the nesting depth first with this linear, non-recursive scan.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aggregation.errors import EncodingError

DEFAULT_MAX_DEPTH = 64

# A complete JSON string (skipped) or one bracket. Alternatives are disjoint, so the
# regex is linear; an unterminated string only makes the count more conservative.
_TOKENS_STR = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_TOKENS_BYTES = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def nesting_depth(text: str | bytes, limit: int = DEFAULT_MAX_DEPTH) -> int:
    """The maximum bracket nesting depth of ``text``; stops early past ``limit``."""
    pattern = _TOKENS_BYTES if isinstance(text, bytes) else _TOKENS_STR
    depth = deepest = 0
    for match in pattern.finditer(text):  # type: ignore[arg-type]
        token = match.group()
        opener = token in ("[", "{", b"[", b"{")
        closer = token in ("]", "}", b"]", b"}")
        if opener:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif closer:
            depth -= 1
    return deepest


def loads(text: str | bytes, *, max_depth: int = DEFAULT_MAX_DEPTH, **kwargs: Any) -> Any:
    """``json.loads`` that refuses nesting deeper than ``max_depth`` with EncodingError.

    Other decoding errors are json's own ``ValueError`` (``JSONDecodeError``), unchanged.
    """
    if nesting_depth(text, max_depth) > max_depth:
        raise EncodingError(f"JSON nested deeper than {max_depth} levels")
    return json.loads(text, **kwargs)
