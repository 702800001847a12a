"""README.md of an exported folder: a model card in the Hugging Face format (YAML
metadata, then prose), written from the run record, its predictions and its store.

The metadata (`library_name`, `tags`, `datasets`, `language`, `metrics`, `model-index`
with each score, its value and the protocol) is what the Hub indexes; the sections are
what a user must read before trusting a prediction: what the model learnt from and how it
was scored, per class and per group, what its text saw, its intended use and its limits,
how to use it and the commands that made it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ser import __version__
from ser.export.card_results import (
    class_lines,
    evaluation_lines,
    group_lines,
    metric_values,
    text_lines,
)
from ser.export.corpora import StoreFacts
from ser.runs.record import RunRecord
from ser.train.checkpoint import fold_key


@dataclass(frozen=True)
class CardInputs:
    """What a card is written from."""

    run_dir: Path
    record: RunRecord
    config: Mapping[str, Any]  # the folder's config.json
    store: StoreFacts
    extract: Sequence[str]  # the `ser extract` commands
    train: str  # the `ser train` command
    placeholder: str = ""  # what stands for the corpus root in them, if anything
    onnx: bool = False


def model_card(c: CardInputs) -> str:
    """The whole README.md."""
    return "---\n" + yaml.safe_dump(metadata(c), sort_keys=False) + "---\n\n" + body(c)


def metadata(c: CardInputs) -> dict[str, Any]:
    facts = c.store.facts
    values = metric_values(c.record, scored_of(c))
    meta: dict[str, Any] = {
        "library_name": "ser",
        "pipeline_tag": "audio-classification",
        "tags": [
            "speech-emotion-recognition",
            "ser",
            str(c.config["family"]),
            *sorted({str(i["modality"]) for i in c.config["inputs"]}),
            *(["onnx"] if c.onnx else []),
            *(["synthetic-data"] if c.store.synthetic else []),
        ],
        "datasets": [facts.dataset],
        "metrics": [v["type"] for v in values],
    }
    if facts.language:
        meta["language"] = [facts.language]
    meta["model-index"] = [{"name": c.record.name, "results": [_result(c, values)]}]
    return meta


def _result(c: CardInputs, values: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    facts = c.store.facts
    args = {"protocol": c.record.protocol, "classes": ",".join(c.record.classes)}
    return {
        "task": {"type": "audio-classification", "name": "Speech emotion recognition"},
        "dataset": {
            "type": facts.dataset,
            "name": _dataset_name(c),
            "split": c.record.protocol,
            "args": args,
        },
        "metrics": [
            {
                "type": v["type"],
                "value": v["value"],
                "name": v["name"],
                "args": {"std": v["std"], "n": v["n"], "protocol": c.record.protocol},
            }
            for v in values
        ],
    }


def _dataset_name(c: CardInputs) -> str:
    name = c.store.facts.name
    return f"synthetic {name}-layout corpus (ser demo-corpus)" if c.store.synthetic else name


def body(c: CardInputs) -> str:
    record, config = c.record, c.config
    sections = [
        [f"# {record.name}", "", _summary(c)],
        ["## Model", "", *_model_lines(config)],
        ["## Training data", "", *_data_lines(c)],
        ["## Evaluation", "", *_scored_lines(c), *evaluation_lines(record)],
        ["## Results by class", "", *class_lines(record)],
        ["## Results by speaker group", "", *group_lines(c.run_dir, record, c.store)],
        ["## Text", "", *text_lines(record)],
        ["## Intended use", "", *_use_lines()],
        ["## Limits", "", *_limit_lines(c)],
        ["## How to use", "", *_how_lines(c)],
        ["## Reproduce", "", *_reproduce_lines(c)],
    ]
    return "\n\n".join("\n".join(s) for s in sections) + "\n"


def _summary(c: CardInputs) -> str:
    inputs = " + ".join(f"{i['name']} ({i['modality']})" for i in c.config["inputs"])
    what = ", ".join(c.record.classes) or ", ".join(c.config["attributes"])
    return (
        f"A speech emotion model ({c.config['family']}) on {inputs}, predicting {what}; trained "
        f"with ser {__version__} on {_dataset_name(c)}."
    )


def _scored(c: CardInputs) -> tuple[list[str], list[str]]:
    """The members the run scored (its (seed, fold)s) and those this folder holds."""
    scored = [fold_key(e.seed, e.fold) for e in c.record.folds]
    return scored, [str(m["key"]) for m in c.config["members"]]


def scored_of(c: CardInputs) -> str:
    """What a score's name adds when the folder holds other members than the run scored
    ("" when the same): a mean over 3 seeds is never said of a folder of 2."""
    scored, held = _scored(c)
    if sorted(scored) == sorted(held):
        return ""
    return f" of the run's {len(scored)} members, not of this folder's {len(held)}"


def _scored_lines(c: CardInputs) -> list[str]:
    scored, held = _scored(c)
    if sorted(scored) == sorted(held):
        return []
    return [
        f"The scores below are the run's: each of its {len(scored)} (seed, fold) members "
        f"scored on its own test side. This folder holds {len(held)} member(s) "
        f"({', '.join(held)}), whose average was not scored on its own.",
        "",
    ]


def _model_lines(config: Mapping[str, Any]) -> list[str]:
    options = ", ".join(f"{k} {v}" for k, v in config["model"].items() if k != "family")
    members = ", ".join(m["key"] for m in config["members"])
    lines = [f"- Family: {config['family']} ({options})."]
    for name, f in config["features"].items():
        lines.append(
            f"- Input {name}: {f['extractor']} {f['encoder'] or ''} layer {f['layer']}, "
            f"{f['pooling'] or f['level']}, extracted in {f['precision']}, stored {f['dtype']}, "
            f"weights sha256 {str(f['weights_sha256'] or '-')[:12]}, "
            f"fingerprint {f['fingerprint'][:12]}."
        )
    lines.append(
        f"- Members ({len(config['members'])}): {members}; averaging: {config['averaging']}."
    )
    return lines + finetune_lines(config)


def finetune_lines(config: Mapping[str, Any]) -> list[str]:
    """What a fine-tuned run trained of its encoders (none: []), and each encoder the
    folder holds with a member's trained layers merged in."""
    from ser.finetune.top_layers import ARCHITECTURES
    from ser.finetune.tuning import FineTune

    lines = []
    for record in config["members"][0].get("finetune") or []:
        model_type = config["features"][record["input"]]["attrs"].get("model_type")
        found = ARCHITECTURES.get(str(model_type))
        tune = FineTune.parse(str(record["finetune"]))
        said = tune.describe(int(record["from_layer"]), found.targets if found else ())
        lines.append(f"- Fine-tuned: {said}.")
    for name, entry in config["encoders"].items():
        if merged := entry.get("finetuned"):
            lora = any(FineTune.parse(str(r["finetune"])).lora for r in merged["inputs"])
            lines.append(
                f"- Encoder {name} ({entry['files']}): the base weights (sha256 "
                f"{str(merged['base_weights_sha256'])[:12]}) with member {merged['member']}'s "
                f"fine-tuned layers in place{' (LoRA folded in)' if lora else ''}, weights "
                f"sha256 {str(entry['weights_sha256'])[:12]}."
            )
    return lines


def _data_lines(c: CardInputs) -> list[str]:
    data = c.record.data
    attributes = ", ".join(c.config["attributes"])
    lines = [
        f"- Corpus: {_dataset_name(c)}; classes: {', '.join(c.record.classes) or 'none'}"
        f"{'; attributes: ' + attributes if attributes else ''}.",
        f"- Utterances read: {data.utterances if data else 'not recorded'}; dropped: "
        f"{(dict(data.dropped) if data else None) or 'none'}.",
    ]
    if c.store.longest is not None:
        lines.append(f"- Longest utterance: {c.store.longest:.1f} s.")
    if c.store.synthetic:
        lines.append(
            "- This corpus is synthetic (written by `ser demo-corpus`): the model has learnt "
            "nothing about human emotion. It exists to check the pipeline."
        )
    return lines


def _use_lines() -> list[str]:
    return [
        "Research on speech emotion recognition: scoring recordings like the training corpus's "
        "(speech of one speaker at a time, the same language and recording conditions), "
        "comparing models, and as a baseline. Not for decisions about people (hiring, "
        "health, policing, credit), nor for inferring the emotions of people who have not "
        "agreed to it."
    ]


def _limit_lines(c: CardInputs) -> list[str]:
    facts = c.store.facts
    return [
        f"- Speech: {facts.speech}. Emotions in natural conversation are subtler and rarer; "
        "expect lower scores on it than above.",
        f"- Language: {facts.language or 'not recorded'}; other languages and accents are "
        "untested.",
        f"- Corpus licence: {facts.licence}.",
        "- Labels are the annotators' perceived emotion, in the class set above: whatever is "
        "said is put in one of these classes.",
        "- Scores above are on held-out speakers of the same corpus; another corpus, "
        "microphone or room lowers them (cross-corpus results are typically much lower).",
    ]


def _how_lines(c: CardInputs) -> list[str]:
    lines = ["```bash", "ser predict --model THIS_FOLDER a.wav b.flac"]
    if c.onnx:
        lines.append("ser predict --model THIS_FOLDER --runtime onnx a.wav")
    lines += [
        "```",
        "",
        "config.json holds every input's provenance; `ser predict --model` "
        "re-creates the features with the recorded settings and refuses a difference.",
    ]
    return lines


def _reproduce_lines(c: CardInputs) -> list[str]:
    sets = c.config["features"]
    prints = [f"- {name}: {f['fingerprint']}" for name, f in sets.items()]
    lines = ["```bash", *c.extract, c.train, "```"]
    if c.placeholder:
        lines += ["", c.placeholder]
    return [
        *lines,
        "",
        "The feature sets' fingerprints (`ser store info` shows them):",
        "",
        *prints,
    ]
