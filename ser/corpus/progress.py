"""How far a corpus read is: a `ReadHook` that `read_corpus(progress=)` hands a read and
that the kinds call once per utterance where they open a file of each (an audio file's
header, MSP-Podcast's transcript): the expensive part of a read (9 s of CPU for 150,000
synthetic MSP-Podcast utterances, without audio). A kind that opens a file per utterance
counts them with `counted`; one that opens none (IEMOCAP: lengths from its label lines,
its wavs found by a listing per dialog) calls nothing.

The hook is told `(pass, done, total)`: the pass's name (`AUDIO_HEADERS`, ...), the
utterances it has done and its total, known before its first (a list of them), so a
display gives done / total, a rate and an ETA. It reaches the kinds through a context
variable set for the one read (`reporting`), not through their `read(root, classes)`:
every kind, a plugin's too, keeps that signature, and one that builds its reading with
`ser.corpus.kinds.flat.read_records` is counted without a word of its own.

>>> told = []
>>> with reporting(lambda *said: told.append(said)):
...     list(counted(["a", "b"], TRANSCRIPTS))
['a', 'b']
>>> told
[('transcripts', 1, 2), ('transcripts', 2, 2)]
>>> list(counted(["a"], TRANSCRIPTS))  # no read told: nothing called
['a']
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import TypeVar

#: `(pass, done, total)`: utterance `done` of the pass's `total` is read.
ReadHook = Callable[[str, int, int], None]

#: The passes ser's kinds count: each utterance's audio header read (its length), its
#: audio file looked for (a kind whose lists give lengths), its transcript file read.
AUDIO_HEADERS, AUDIO_FILES, TRANSCRIPTS = "audio headers", "audio files", "transcripts"

T = TypeVar("T")

_HOOK: ContextVar[ReadHook | None] = ContextVar("ser_corpus_read_hook", default=None)


@contextlib.contextmanager
def reporting(hook: ReadHook | None) -> Iterator[None]:
    """The reads within the block tell `hook` (None: nothing) how far they are."""
    token = _HOOK.set(hook)
    try:
        yield
    finally:
        _HOOK.reset(token)


def counted(items: Sequence[T], what: str) -> Iterator[T]:
    """`items`, each told to the read's hook as pass `what` once it is done (when the
    next is asked for, or the pass ends); just `items` when no read is told."""
    hook = _HOOK.get()
    if hook is None:
        yield from items
        return
    total = len(items)
    for done, item in enumerate(items, start=1):
        yield item
        hook(what, done, total)
