"""Manifest columns for made-up utterance ids: a store without a corpus behind it, as
benchmarks and tests build one (plausible values, not IEMOCAP content).

>>> columns = example_columns(["Ses01F_impro01_F000", "Ses01F_impro01_M001"])
>>> columns["speaker"], columns["wav"][1]
(['Ses01F', 'Ses01M'], 'Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M001.wav')
"""

from __future__ import annotations

from collections.abc import Sequence


def example_columns(utt_ids: Sequence[str]) -> dict[str, list]:
    n = len(utt_ids)
    return {
        "utt_id": list(utt_ids),
        "session": [int(u[3:5]) for u in utt_ids],
        "dialog": [u[:-5] for u in utt_ids],
        "speaker": [u[:5] + u[-4] for u in utt_ids],
        "gender": [u[-4] for u in utt_ids],
        "kind": ["script" if "script" in u else "impro" for u in utt_ids],
        "order": list(range(n)),
        "start": [1.5 * i for i in range(n)],
        "end": [1.5 * i + 1.25 for i in range(n)],
        "duration": [1.25] * n,
        "label": ["neu"] * n,
        "valence": [3.0] * n,
        "arousal": [2.5] * n,
        "dominance": [3.5] * n,
        "transcript": ["hello there"] * n,
        "transcript_raw": ["hello [LAUGHTER] there"] * n,
        "wav": [f"Session{int(u[3:5])}/sentences/wav/{u[:-5]}/{u}.wav" for u in utt_ids],
    }
