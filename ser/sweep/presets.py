"""The papers' tables and figures as sweep presets, with the numbers the papers print.

A preset's rows are cells as the paper prints them, with the `ser train` options that
make them; ``{audio}`` and ``{text}`` in ``features`` are the preset's parameters
(``--set audio=hubert-base-ls960.L12``), by default the extractors each paper used.

The published numbers come with the paper's protocol (`Preset.protocol`): the MSMSER
paper reports 5-fold leave-one-session-out without saying how epochs were chosen; the
fusion study trains on sessions 1-4 and tests on session 5 for 150 epochs (20 repeats,
WA only); Zhou et al. use a random 70/20/10 split (speaker-dependent). ser's numbers in
the same report are speaker-independent with the validation named in each run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

MSMSER = "Wang, Ma and Ding, ICASSP 2023 (MSMSER)"
FUSION = "Wu, Lu and Dai, ICASSP 2023 (fusion study, perspective loss)"
ZHOU = "Zhou et al. (BERT + CNN late fusion)"


def _frozen(d: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(d or {}))


@dataclass(frozen=True)
class Row:
    """One cell: `label` (and `column`) as printed, its options, the published numbers
    (percent; ``wa_std`` where the paper gives a spread); `meta`: what a table's own
    report reads of the row (a probe's encoder and layer, `ser.sweep.probe`); `store`:
    the one store (resolved path) it trains on, its published numbers that store's
    corpus's (a probe's rows: one store's layers); None: every store of the sweep, its
    published numbers the papers' (IEMOCAP's)."""

    label: str
    options: Mapping[str, Any] = field(default_factory=_frozen)
    published: Mapping[str, float] = field(default_factory=_frozen)
    column: str | None = None
    meta: Mapping[str, Any] = field(default_factory=_frozen)
    store: str | None = None


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    rows: tuple[Row, ...]
    reference: str  # the row (label[/column]) every other row is tested against
    paper: str = ""  # "": a SPEC file's own table
    protocol: str = ""  # the paper's protocol, as it describes it
    params: Mapping[str, str] = field(default_factory=_frozen)  # {"audio": its default set, ...}
    fixed: Mapping[str, Any] = field(default_factory=_frozen)
    metrics: tuple[str, ...] = ("ua", "wa")  # the paper's columns
    figure: str | None = None  # "queries" (UA against L) | "heatmap" (the 24 cells) | "layers"
    note: str = ""


def _msmser(label: str, published: tuple[float, float] | None, **options: object) -> Row:
    options.setdefault("features", "{audio}+{text}")
    scores = {} if published is None else {"ua": published[0], "wa": published[1]}
    return Row(label, _frozen(options), _frozen(scores))


# Any: the `Preset` fields of one table, each of its own type.
def _msmser_preset(**fields: Any) -> Preset:
    """A table of the MSMSER paper: HuBERT + MPNet, MIT, 4 classes, 5-fold LOSO."""
    return Preset(
        paper=MSMSER,
        protocol="5-fold leave-one-session-out; epoch selection not stated",
        params=_frozen({"audio": "hubert", "text": "mpnet"}),
        fixed=_frozen({"fusion": "mit", "protocol": "loso", "classes": "4"}),
        **fields,
    )


MSMSER_TABLE2 = _msmser_preset(
    name="msmser-table2",
    title="MSMSER Table 2: ablation of each component",
    rows=(
        _msmser("Text", (66.5, 64.7), features="{text}"),
        _msmser("Audio", (64.9, 63.2), features="{audio}"),
        _msmser("w/o Encoder", (71.9, 70.9), encoder=False),
        _msmser("w/o SelfAtt", (72.5, 71.4), selfatt=False),
        _msmser("w/o MIT", (67.2, 65.1), fusion="concat"),
        _msmser("Full", (76.4, 75.2)),
    ),
    reference="Full",
)

MSMSER_TABLE3 = _msmser_preset(
    name="msmser-table3",
    title="MSMSER Table 3: random modality masking, tested unmasked and with one modality",
    rows=(
        _msmser("w/o RMM", (73.3, 71.7), rmm=False),
        _msmser("w/o RMM (only text)", (63.2, 61.2), rmm=False, eval_mask="audio"),
        _msmser("w/o RMM (only audio)", (55.5, 55.2), rmm=False, eval_mask="text"),
        _msmser("Full", (76.4, 75.2)),
        _msmser("Full (only text)", (65.8, 64.4), eval_mask="audio"),
        _msmser("Full (only audio)", (63.4, 62.9), eval_mask="text"),
    ),
    reference="Full",
    note="'only text' masks the audio at test time, 'only audio' the text.",
)

MSMSER_QUERIES = _msmser_preset(
    name="msmser-queries",
    title="MSMSER Fig. 2: UA against the number of emotion queries L",
    rows=tuple(
        _msmser(f"L = {n}", (76.4, 75.2) if n == 30 else None, queries=n)
        for n in (2, 5, 10, 20, 30, 50)
    ),
    reference="L = 30",
    figure="queries",
    note="The paper plots Fig. 2 without printing its values; only L = 30 (its Table 1) is given.",
)

_POSITIONS = {"EF": "early", "MF": "middle", "LF": "late", "LGF": "logits"}
_METHODS = {"ADD-Fusion": "add", "Concat-Fusion": "concat", "AT-Fusion": "attention"}
# Table 2: WA mean ± std over 20 repeats, (single loss, perspective loss).
_FUSION_WA = {
    ("EF", "ADD-Fusion"): ((83.95, 0.64), (84.57, 0.52)),
    ("EF", "Concat-Fusion"): ((83.12, 0.85), (83.68, 0.52)),
    ("EF", "AT-Fusion"): ((83.12, 0.59), (83.29, 0.51)),
    ("MF", "ADD-Fusion"): ((83.86, 0.54), (85.23, 0.54)),
    ("MF", "Concat-Fusion"): ((83.25, 0.79), (84.89, 0.34)),
    ("MF", "AT-Fusion"): ((83.12, 1.01), (84.99, 0.22)),
    ("LF", "ADD-Fusion"): ((83.61, 0.46), (84.80, 0.41)),
    ("LF", "Concat-Fusion"): ((83.54, 1.77), (84.43, 0.55)),
    ("LF", "AT-Fusion"): ((83.20, 1.72), (84.77, 0.63)),
    ("LGF", "ADD-Fusion"): ((83.39, 0.54), (85.40, 0.40)),
    ("LGF", "Concat-Fusion"): ((83.23, 1.57), (84.60, 0.47)),
    ("LGF", "AT-Fusion"): ((81.79, 1.37), (84.52, 0.72)),
}
LOSS_COLUMNS = {"single": "L_s", "perspective": "L_p"}
# Table 3: per-class accuracy (happy, sad, neutral, angry) of LGF + ADD-Fusion.
FUSION_TABLE3 = {
    "A (unimodal)": (72.01, 75.51, 60.16, 88.24),
    "T (unimodal)": (90.52, 90.61, 71.88, 75.88),
    "A+T (single loss)": (89.62, 88.57, 73.44, 81.18),
    "A+T (perspective loss)": (90.52, 89.39, 76.56, 88.24),
}
FUSION_TABLE3_CLASSES = ("hap", "sad", "neu", "ang")


def _fusion_rows() -> tuple[Row, ...]:
    rows = [
        Row(
            f"{fl} {fm}",
            _frozen({"fusion": _METHODS[fm], "fusion_at": _POSITIONS[fl], "loss": loss}),
            _frozen({"wa": wa[0], "wa_std": wa[1]}),
            column=LOSS_COLUMNS[loss],
        )
        for (fl, fm), pair in _FUSION_WA.items()
        for loss, wa in zip(LOSS_COLUMNS, pair, strict=True)
    ]
    for modality, wa in (("audio", 71.19), ("text", 82.58)):  # its Table 1
        options = {"fusion": "none", "context": True, "features": f"{{{modality}}}"}
        rows.append(Row(modality.capitalize(), _frozen(options), _frozen({"wa": wa})))
    return tuple(rows)


FUSION_STUDY = Preset(
    name="fusion-study",
    title="Fusion study Table 2: fusion layer x fusion method x loss (and Table 1, Table 3)",
    paper=FUSION,
    protocol="sessions 1-4 train, session 5 test, 150 epochs, last epoch, 20 repeats",
    params=_frozen({"audio": "is13", "text": "bert"}),
    # The paper's training set: all of sessions 1-4, fixed epochs, the last one tested.
    fixed=_frozen(
        {"features": "{audio}+{text}", "protocol": "session5", "val": "none", "classes": "4"}
    ),
    rows=_fusion_rows(),
    reference="LGF ADD-Fusion/L_p",
    metrics=("wa",),
    figure="heatmap",
)

ZHOU_PRESET = Preset(
    name="zhou",
    title="Zhou et al. Table 3: late fusion against single modalities",
    paper=ZHOU,
    protocol="random 70/20/10 split of utterances (speaker-dependent), 5 classes",
    params=_frozen({"audio": "logmel", "text": "bert"}),
    fixed=_frozen({"classes": "5", "protocol": "random"}),  # its rows on one split
    rows=(
        Row("Text", _frozen({"fusion": "none", "features": "{text}"}), _frozen({"wa": 72.4})),
        Row("Audio", _frozen({"fusion": "none", "features": "{audio}"}), _frozen({"wa": 47.8})),
        Row(
            "Text + Audio",
            _frozen({"fusion": "late-prob", "features": "{audio}+{text}"}),
            _frozen({"wa": 76.9}),
        ),
    ),
    reference="Text + Audio",
    metrics=("wa",),
    note="The single-modality rows are ser's unimodal MLP on the same feature sets, not "
    "the paper's CNN and BERT branches; the paper reports accuracy (WA).",
)

PRESETS: Mapping[str, Preset] = MappingProxyType(
    {p.name: p for p in (MSMSER_TABLE2, MSMSER_TABLE3, MSMSER_QUERIES, FUSION_STUDY, ZHOU_PRESET)}
)
ALL = "all"  # every preset above, one sweep (shared cells trained once)
CROSS = "cross-corpus"  # made from the stores it sweeps: `ser.sweep.cross`
CHALLENGE = "msp-podcast-challenge"  # MSP-Podcast stores only: `ser.sweep.challenge`
SENTIMENT = "mosei-sentiment"  # CMU-MOSEI / CMU-MOSI stores only: `ser.sweep.sentiment`
FINETUNE = "finetune"  # an encoder's top layers, made from its store: `ser.sweep.finetune`
# What its --set takes, as messages show it (here: `ser.sweep.spec` checks them).
FINETUNE_PARAMS = MappingProxyType({"encoder": "encoder=STEM", "lora": "lora=R"})


def row_key(row: Row) -> str:
    """How a reference names a row: its label, with ``/column`` when it has one."""
    return row.label if row.column is None else f"{row.label}/{row.column}"
