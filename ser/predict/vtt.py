"""WebVTT subtitles of a segmented prediction (`--vtt`): one cue per segment, each of the
run's heads' words (`ser.heads.predicted.Predicted.cue`: the class and its probability;
from a run trained on attributes, each one's initial and value on the corpus's scale: "A
3.2 V 2.9 D 3.1"), so the labels play along with the recording in a media player.

>>> import numpy as np
>>> from types import SimpleNamespace as S
>>> from ser.heads.attributes import AttributeHead
>>> from ser.heads.emotion import EmotionHead
>>> from ser.heads.predicted import Part
>>> heads = (EmotionHead(), AttributeHead(("arousal",)))
>>> parts = {"emotion": Part(("hap", "sad"), np.float32([0.71, 0.29])),
...          "attributes": Part(("arousal",), np.float32([3.24]))}
>>> cue_text(S(heads=parts), heads)
'hap 0.71 A 3.2'
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ser.heads.predicted import Predicted
from ser.predict.config import Prediction


def timestamp(seconds: float) -> str:
    """`HH:MM:SS.mmm`, as WebVTT cue timings are written."""
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    return f"{hours:02d}:{minutes:02d}:{millis // 1000:02d}.{millis % 1000:03d}"


def vtt_text(segments: Sequence[Prediction], heads: Sequence[Predicted]) -> str:
    """The cues of the predicted segments (those of no words, failed ones, have none);
    with segments of several files each cue names its file."""
    files = {p.path for p in segments}
    lines = ["WEBVTT", ""]
    for p in segments:
        text = cue_text(p, heads)
        if not text or p.start is None or p.end is None:
            continue
        if len(files) > 1:
            text = f"{Path(p.path).name}: {text}"
        lines += [f"{timestamp(p.start)} --> {timestamp(p.end)}", text, ""]
    return "\n".join(lines)


def cue_text(p: Prediction, heads: Sequence[Predicted]) -> str:
    """A cue's words: each of `heads`' (`Predicted.cue`), in order."""
    return " ".join(w for h in heads if (part := p.heads.get(h.name)) for w in h.cue(part))
