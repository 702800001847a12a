"""The emotion timeline of a segmented prediction (`ser predict --segment ... --plot`):
per file, each class's probability over time (a step per segment) with the segments
shaded in the colour of their class, so a long recording reads at a glance.

>>> import tempfile
>>> from types import SimpleNamespace as S
>>> seg = [S(path="a.wav", label="hap", probabilities={"neu": 0.3, "hap": 0.7}, start=0.0,
...          end=5.0), S(path="a.wav", label="neu", probabilities={"neu": 0.6, "hap": 0.4},
...          start=5.0, end=9.0)]
>>> out = Path(tempfile.mkdtemp()) / "t.png"
>>> plot_timeline(seg, ("neu", "hap"), out); out.stat().st_size > 0
True
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ser.predict.config import Prediction

if TYPE_CHECKING:  # matplotlib is imported where it draws: `ser predict` starts without it
    from matplotlib.axes import Axes


#: A predicted segment as drawn: start, end (s), its class, every class's probability.
Span = tuple[float, float, str, dict[str, float]]

#: Files drawn at most: one panel each (a folder of a hundred recordings is not a figure).
MOST_FILES = 8


def plot_timeline(segments: Sequence[Prediction], classes: Sequence[str], out: Path) -> None:
    """Draw the predicted segments' timeline into `out` (PNG): a panel per file (the
    first `MOST_FILES`), failed segments left blank."""
    import matplotlib

    matplotlib.use("Agg")  # a file, never a window: runs on servers without a display
    import matplotlib.pyplot as plt

    by_file: dict[str, list[Span]] = {}
    for s in segments:
        if s.label is not None and s.start is not None and s.end is not None:
            by_file.setdefault(s.path, []).append((s.start, s.end, s.label, s.probabilities))
    files = list(by_file)[:MOST_FILES] or ["(no segment predicted)"]
    fig, axes = plt.subplots(len(files), 1, figsize=(12, 2.6 * len(files)), squeeze=False)
    colours = {c: plt.get_cmap("tab10")(i % 10) for i, c in enumerate(classes)}
    for ax, name in zip(axes[:, 0], files, strict=True):
        _panel(ax, by_file.get(name, []), classes, colours)
        ax.set_title(Path(name).name, loc="left", fontsize=10)
    axes[-1, 0].set_xlabel("time (s)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[c]) for c in classes]
    fig.legend(handles, list(classes), loc="upper right", ncol=len(classes), fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def _panel(ax: Axes, spans: list[Span], classes: Sequence[str], colours: dict[str, Any]) -> None:
    """One file: a shaded band per segment (its class) and each class's probability."""
    for start, end, label, _ in spans:
        ax.axvspan(start, end, color=colours[label], alpha=0.15, linewidth=0)
    xs = [t for start, end, _, _ in spans for t in (start, end)]
    for c in classes:
        ys = [p.get(c, 0.0) for *_, p in spans for _ in (0, 1)]
        ax.plot(xs, ys, color=colours[c], linewidth=1.2)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
