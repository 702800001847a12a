"""A trained run or an exported folder loaded to predict from Python (`load`): `ser predict`
(`ser.predict.run.predict`) with its checkpoints opened and its model loaded once, each
input's prediction as one typed value (docs/python.md)."""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ser.api.arguments import count, python_named, python_spelled
from ser.errors import ConfigError
from ser.export.folder import CONFIG
from ser.predict.config import PredictConfig, Prediction
from ser.predict.run import Predictor, open_predictor, predict
from ser.runs.record import RECORD
from ser.runtime.progress import Counter, log_console, task_bar


@dataclass(frozen=True)
class Segment:
    """One stretch of a segmented recording: its span (seconds) and what it was predicted."""

    start: float
    end: float
    label: str | None  # the category's most probable class (None: no category, or failed)
    probabilities: dict[str, float]  # the category's class probabilities ({}: none)
    attributes: dict[str, float]  # arousal, valence, ... on the corpus's scale ({}: none)
    error: str | None = None


@dataclass(frozen=True)
class Predicted:
    """One input's prediction. Whole: its `label`, `probabilities` and `attributes`;
    segmented (`segment=`): those are empty and `timeline` holds each segment's.
    `outputs`: every head of the run by name (emotion, attributes, sentiment, ...), its
    outputs by name. `error`: why it could not be predicted (None: it was). An input that
    is an utterance of the run's own store has its id (`utterance`), the checkpoints whose
    test side held it (`held_out_by`) and those that trained on it (`seen_by`)."""

    path: str
    label: str | None
    probabilities: dict[str, float]
    attributes: dict[str, float]
    outputs: dict[str, dict[str, float]]
    transcript: str | None = None
    notes: tuple[str, ...] = ()
    error: str | None = None
    timeline: tuple[Segment, ...] = ()
    utterance: str | None = None
    held_out_by: tuple[str, ...] = ()
    seen_by: tuple[str, ...] = ()


class Predictions(list[Predicted]):
    """The predictions of `Model.predict`, one per input file, in order; `notes`: what
    `ser predict` says of them as a whole (a dialog model given no conversation, ...)."""

    notes: tuple[str, ...] = ()


@dataclass
class Model:
    """A run's or an exported folder's members, to predict new recordings with (`load`).
    `classes`: the run's class set (() without the category); `checkpoints`: the members
    averaged."""

    config: PredictConfig
    predictor: Predictor = field(repr=False)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.predictor.ckpts[0].classes

    @property
    def checkpoints(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.predictor.ckpts)

    def predict(
        self,
        paths: str | Path | Sequence[str | Path],
        transcripts: str | Sequence[str | None] | None = None,
        segment: str | None = None,
        progress: bool = False,
    ) -> Predictions:
        """One prediction per audio file of `paths` (a folder stands for its audio files,
        a CSV list for its lines, as `ser predict` reads them). `transcripts`: one text for
        every input, or one per path (None: none given) for a run on text features;
        `segment` ("fixed:SECONDS[:HOP]" or "vad"): each file predicted in segments, its
        `timeline`. `progress=True`: the inputs each encoder has done on stderr, as `ser
        predict` shows them (a bar on a terminal, else a line at most every 30 s). A file
        that cannot be predicted gets its `error`; `ConfigError` for what the run cannot be
        asked."""
        if not isinstance(progress, bool):
            raise TypeError(f"progress must be True or False, got {progress!r}")
        given = [str(p) for p in ([paths] if isinstance(paths, str | Path) else paths)]
        if not given:
            return Predictions()  # none asked, none made
        texts = _texts(given, transcripts)
        with task_bar(log_console(), progress) as bar:
            if segment is not None:  # each file's segments are one call's predictions
                made = Predictions()
                for path, text in zip(given, texts, strict=True):
                    made += self._predict([path], text, segment, bar)
                return made
            if all(t == texts[0] for t in texts):
                return self._predict(given, texts[0], None, bar)
            with tempfile.TemporaryDirectory(prefix="ser-predict-") as folder:
                listed, shown = _csv_list(Path(folder), given, texts)
                made = self._predict([str(listed)], None, None, bar)
                return _renamed(made, shown)

    def _predict(
        self, inputs: list[str], text: str | None, segment: str | None, bar: Counter | None
    ) -> Predictions:
        config = replace(self.config, inputs=tuple(inputs), text=text, segment=segment)
        with python_named(PREDICT_FLAGS, RENAMED):
            result = predict(config, opened=self.predictor, bar=bar)
        made = Predictions(_whole(p) for p in result.predictions)
        if segment is not None:
            made = Predictions(_segmented(result.predictions))
        made = Predictions(_python_words(p) for p in made)
        made.notes = tuple(python_spelled(n, PREDICT_FLAGS, RENAMED) for n in result.notes)
        return made


def load(
    path: str | Path,
    device: str = "auto",
    checkpoint: str = "folds",
    runtime: str = "torch",
    encoders: str | Path | Sequence[str | Path] = (),
    asr: str | None = None,
    batch_size: int = 16,
) -> Model:
    """The model of a run folder (``<out>/<name>``, with run.json) or of a folder `ser
    export` wrote (with config.json), its checkpoints opened as `ser predict --run` or
    `--model` opens them (the options are its own: `--checkpoint`, `--runtime`,
    `--encoder`, `--asr`, `--batch-size`; `encoders` one folder or several); the encoders
    load at the first prediction.
    `checkpoint`: "folds" (their mean), "final", "held-out" (each of the run's own
    utterances by the folds whose test side held it alone) or keys, comma-separated.
    `RunNotFound` for a path not there, `CheckpointError` (or another `SerError`) for a
    folder that holds no such model."""
    folder = Path(path)
    batch_size = count(batch_size, "batch_size")
    exported = (folder / CONFIG).is_file() and not (folder / RECORD).is_file()
    config = PredictConfig(
        run="" if exported else str(folder),
        model=str(folder) if exported else None,
        inputs=(),
        checkpoint=checkpoint,
        device=device,
        runtime=runtime,
        encoders=_folders(encoders),
        asr=asr,
        batch_size=batch_size,
    )
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    with python_named(PREDICT_FLAGS, RENAMED):
        return Model(config, open_predictor(config))


def _folders(encoders: object) -> tuple[str, ...]:
    """`encoders` as folders: one folder (a text or a path) or several."""
    if isinstance(encoders, str | Path):
        return (str(encoders),)
    if isinstance(encoders, list | tuple) and all(isinstance(e, str | Path) for e in encoders):
        return tuple(str(e) for e in encoders)
    raise TypeError(f"encoders takes a folder or a list of folders, got {encoders!r}")


def _texts(paths: list[str], transcripts: str | Sequence[str | None] | None) -> list[str | None]:
    """Each path's transcript (None: none given)."""
    if transcripts is None or isinstance(transcripts, str):
        return [transcripts] * len(paths)
    texts = list(transcripts)
    if len(texts) != len(paths):
        raise ConfigError(
            f"transcripts: {len(texts)} given for {len(paths)} path(s); give one each"
        )
    return texts


def _csv_list(
    folder: Path, paths: list[str], texts: list[str | None]
) -> tuple[Path, dict[str, str]]:
    """A `ser predict` CSV list of `paths` with their `texts`, in `folder`, and each
    path as it will come back (absolute) -> as given."""
    listed = folder / "inputs.csv"
    shown: dict[str, str] = {}
    with listed.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "transcript"])
        for path, text in zip(paths, texts, strict=True):
            absolute = str(Path(path).absolute())
            shown.setdefault(absolute, path)
            writer.writerow([absolute] if text is None else [absolute, text])
    return listed, shown


def _renamed(made: Predictions, shown: dict[str, str]) -> Predictions:
    renamed = Predictions(replace(p, path=shown.get(p.path, p.path)) for p in made)
    renamed.notes = made.notes
    return renamed


#: `ser predict`'s flags that `load` and `predict` take as arguments (all take a value),
#: and those named otherwise here.
PREDICT_FLAGS = dict.fromkeys(
    ("text", "asr", "segment", "checkpoint", "batch_size", "device", "runtime", "encoder"), False
)
RENAMED = {"text": "transcripts", "encoder": "encoders"}


def _python_words(p: Predicted) -> Predicted:
    """`p` with its error and notes naming `predict`'s arguments, not `ser predict`'s flags."""
    error = None if p.error is None else python_spelled(p.error, PREDICT_FLAGS, RENAMED)
    notes = tuple(python_spelled(n, PREDICT_FLAGS, RENAMED) for n in p.notes)
    return replace(p, error=error, notes=notes)


def _whole(p: Prediction) -> Predicted:
    outputs = {name: part.named() for name, part in p.heads.items()}
    return Predicted(
        p.path, p.label, p.probabilities, p.attributes, outputs, p.transcript,
        tuple(p.notes), p.error, (), p.utterance, p.held_out_by, p.seen_by,
    )  # fmt: skip


def _segmented(predictions: list[Prediction]) -> list[Predicted]:
    """Each file's segments (consecutive predictions of one path) as one `Predicted`."""
    files: dict[str, list[Prediction]] = {}
    for p in predictions:
        files.setdefault(p.path, []).append(p)
    made = []
    for path, parts in files.items():
        timeline = tuple(
            Segment(p.start or 0.0, p.end or 0.0, p.label, p.probabilities, p.attributes, p.error)
            for p in parts
        )
        notes = tuple(dict.fromkeys(n for p in parts for n in p.notes))
        failed = all(p.error is not None for p in parts)
        error = parts[0].error if failed else None
        known = (parts[0].utterance, parts[0].held_out_by, parts[0].seen_by)
        made.append(Predicted(path, None, {}, {}, {}, None, notes, error, timeline, *known))
    return made
