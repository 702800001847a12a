"""The names a store accepts for its feature sets and transcript sets.

Its own module because both kinds of set check them (`store.py`, `store_transcripts.py`).
"""

from __future__ import annotations

import re

from ser.cache.backend import RESERVED
from ser.errors import StoreError

# "@" joins a text set to the transcripts it was extracted from (`mpnet-base@asr-whisper-small`).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=@-]*$")


def check_name(name: str) -> None:
    """StoreError unless `name` can name a set in a store."""
    if not _NAME.match(name) or name in RESERVED:
        raise StoreError(
            f"feature set name {name!r}: use letters, digits and . _ + = @ - "
            f"(not starting with a symbol, and not {' or '.join(map(repr, RESERVED))})"
        )
