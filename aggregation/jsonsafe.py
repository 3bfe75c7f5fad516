"""JSON from untrusted peers without a stack overflow.

``json.loads`` recurses in C for every nested array or object and relies on Python's
recursion limit to stop. ``py_ecc`` (imported by web3) raises that limit to 100,000 for
the whole process, so a body of ~100k ``[`` overflows the C stack and kills the process
with SIGSEGV instead of raising. Every parser of remote JSON (provider responses,
transport frames) checks the nesting depth first with this linear, non-recursive scan.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from aggregation.errors import EncodingError

DEFAULT_MAX_DEPTH = 64

# A complete JSON string, in the "unrolled" form (one C-level loop per run of ordinary
# characters), so that strings can be cut out before brackets are counted. An
# unterminated string is left in place, and its brackets count: only more conservative.
_STRING_BYTES = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# +1 for an opening bracket, -1 for a closing one, 0 for every other byte.
_STEP = [0] * 256
for _char in b"[{":
    _STEP[_char] = 1
for _char in b"]}":
    _STEP[_char] = -1
_NOT_BRACKETS = bytes(c for c in range(256) if _STEP[c] == 0)


def nesting_depth(text: str | bytes) -> int:
    """The maximum bracket nesting depth of ``text`` (brackets inside strings excluded).

    Linear and non-recursive, and in C except for one pass over the brackets themselves:
    strings are cut out by a regex, every other non-bracket byte by ``bytes.translate``,
    and the depth is the highest running sum of +1/−1.
    """
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    brackets = _STRING_BYTES.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(0, max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0))


def loads(text: str | bytes, *, max_depth: int = DEFAULT_MAX_DEPTH, **kwargs: Any) -> Any:
    """``json.loads`` that refuses nesting deeper than ``max_depth`` with EncodingError.

    Other decoding errors are json's own ``ValueError`` (``JSONDecodeError``), unchanged.
    """
    if nesting_depth(text) > max_depth:
        raise EncodingError(f"JSON nested deeper than {max_depth} levels")
    return json.loads(text, **kwargs)
