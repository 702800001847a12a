"""Checkpoints: a trained (seed, fold) model as files that rebuild it anywhere.

``<run>/checkpoints/<key>.safetensors`` (weights, the fold's z-scores) and ``<key>.json``
(config, classes, specs, the feature sets' provenance `ser predict` re-creates, the fold's
test predictions), written weights first, each atomically: a sidecar means a whole
checkpoint. The layout is in docs/dev/predict.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load, save_file

from ser import Json
from ser.cache.atomic import atomic
from ser.cache.fingerprint import LOCATIONS, model_location
from ser.cache.formats import STORE_SUFFIXES
from ser.errors import CheckpointError, ConfigError, ReportError, RunNotFound
from ser.finetune.tuning import FineTune, Tuning, load_tuning, restore
from ser.models import FamilyConfig, build_model
from ser.models.batch import InputSpec
from ser.models.registry import config_from_record, config_record
from ser.models.targets import Targets
from ser.runs.codec import encode
from ser.runs.record import RECORD, RunRecord, read
from ser.train.data import ZScore
from ser.train.features import layers_record
from ser.train.plan import Job, Prepared, run_dir, run_targets

CHECKPOINTS = "checkpoints"
# 2: a plain module's state_dict. 1 (member-stacked weights [1, ...]) is refused with a
# message: the run trains again in minutes.
FORMAT = 2
FINAL = "final"
# The sidecar's (and an export's config's) sha256 of the weights file, as written.
WEIGHTS_SHA256 = "weights_sha256"
# The attribute targets' `ZScore`'s tensors: their z-score and range.
SCALE = ("targets.mean", "targets.std", "targets.low", "targets.high")


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: the sidecar's fields and the tensors."""

    key: str
    model: FamilyConfig
    classes: tuple[str, ...]
    specs: tuple[InputSpec, ...]
    unit: str
    precision: str
    features: dict[str, dict[str, Any]]  # stored set name -> {"fingerprint", "attrs"}
    zscore: dict[str, ZScore]
    state: dict[str, torch.Tensor]
    meta: dict[str, Any]  # the whole sidecar (seed, fold, test predictions, ...)
    targets: Targets = dataclasses.field(default_factory=Targets)
    # The attribute targets' training side's scale [A] (None: a run without them): the
    # model's attribute outputs times std plus mean, clipped to [low, high], are on the
    # corpus's scale.
    target_scale: ZScore | None = None

    @property
    def temperature(self) -> float:
        """The class logits' divisor before the softmax (`--calibrate temperature`, fitted
        on the fold's validation side); 1.0 for a checkpoint of a run without it."""
        return float(self.meta.get("temperature", 1.0))

    @property
    def layers(self) -> dict[str, dict[str, list[Any]]]:
        """A layered input's stored sets and layers (`{input: {"sets", "layers"}}`)."""
        return dict(self.meta.get("layers") or {})

    def stored(self, spec: InputSpec) -> list[str]:
        """The stored sets an input reads, in layer order: its layer sets, or itself."""
        return list(self.layers[spec.name]["sets"]) if spec.layers > 1 else [spec.name]

    def build(self, device: torch.device | str = "cpu") -> torch.nn.Module:
        """The model with these weights, in eval mode on `device`."""
        model = build_model(self.model, list(self.specs), len(self.classes), 0, self.targets)
        tuning = self.tuning()
        if tuning is None:
            model.load_state_dict(self.state)
        else:  # the base weights from the encoder, then what trained
            restore(tuning.attach(model), self.state)
        return model.to(device).eval()

    def tuning(self) -> Tuning | None:
        """The fine-tuned inputs' top layers as the base weights give them (none: None),
        loaded from the encoders the sets' provenance names, checked by checksum."""
        entries = self.meta.get("finetune") or []
        sets = {
            str(e["finetune"]).partition(":")[0]: (e["input"], self.features[e["input"]]["attrs"])
            for e in entries
        }
        return load_tuning([_tuned_as(e) for e in entries], sets)


def _tuned_as(entry: Mapping[str, Any]) -> str:
    """A sidecar's `--finetune` value as the model is rebuilt: an export's `merged` one
    (its encoder holds the trained layers, LoRA folded in: `ser.export.merged`) as whole
    layers, every tensor of them in the member's weights."""
    if not entry.get("merged"):
        return str(entry["finetune"])
    tune = FineTune.parse(str(entry["finetune"]))
    return dataclasses.replace(tune, lora=None, alpha=None, targets=(), norms="train").spelled


def fold_key(seed: int, fold: str) -> str:
    """``seed0_session5``: the file stem of one (seed, fold)'s checkpoint."""
    return f"seed{seed}_{fold}"


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINTS


def remove_checkpoints(run_dir: Path) -> None:
    """Delete every checkpoint of a run (``--overwrite``)."""
    folder = checkpoint_dir(run_dir)
    for path in sorted(folder.glob("*.json")) + sorted(folder.glob("*.safetensors")):
        path.unlink()


def has_checkpoint(run_dir: Path, key: str) -> bool:
    folder = checkpoint_dir(run_dir)
    return (folder / f"{key}.json").is_file() and (folder / f"{key}.safetensors").is_file()


def checkpoint_keys(run_dir: Path) -> list[str]:
    """Keys of the run's whole checkpoints, sorted."""
    folder = checkpoint_dir(run_dir)
    return sorted(p.stem for p in folder.glob("*.json") if has_checkpoint(run_dir, p.stem))


def load_checkpoint(run_dir: Path, key: str) -> Checkpoint:
    """Read one checkpoint; a missing or unreadable one raises `CheckpointError`."""
    folder = checkpoint_dir(run_dir)
    path = folder / f"{key}.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} cannot be read: {err}") from None
    weights = folder / f"{key}.safetensors"
    try:
        tensors, problem = load_weights(weights, meta)
    except (OSError, ValueError, SafetensorError) as err:  # cut short, or not safetensors
        problem = f"cannot be read ({err})"
    if problem:
        raise CheckpointError(
            f"checkpoint {weights} ({_which(meta, key)}) {problem}: delete it and run the "
            "run's `ser train` command again, which trains that fold again and keeps the others"
        ) from None
    if meta.get("format", 0) > FORMAT:
        raise CheckpointError(f"checkpoint {path} was written by a newer ser")
    if meta.get("format", 0) < FORMAT:
        raise CheckpointError(
            f"checkpoint {path} holds the member-stacked weights of an older ser (format "
            f"{meta.get('format', 0)}); train the run again with `ser train ... --overwrite`"
        )
    state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    zscore = {
        name: ZScore(tensors[f"zscore.{name}.mean"], tensors[f"zscore.{name}.std"])
        for name in {k.split(".", 1)[1].rsplit(".", 1)[0] for k in tensors if k[:7] == "zscore."}
    }
    scale = ZScore(*(tensors[n] for n in SCALE)) if SCALE[0] in tensors else None
    try:
        model = config_from_record(meta["model"])
    except ConfigError as err:
        raise CheckpointError(
            f"checkpoint {path}: {err}; train the run again with `ser train ... --overwrite`"
        ) from None
    return Checkpoint(
        key=key,
        model=model,
        classes=tuple(meta["classes"]),
        specs=tuple(InputSpec(**s) for s in meta["specs"]),
        unit=str(meta["unit"]),
        precision=str(meta["precision"]),
        features=dict(meta["features"]),
        zscore=zscore,
        state=state,
        meta=meta,
        targets=Targets.from_record(meta["targets"]) if "targets" in meta else Targets(),
        target_scale=scale,
    )


def model_size(run_dir: Path, key: str) -> int:
    """The values of checkpoint `key`'s model tensors, from its weights' header: what the
    member trained (a fine-tuned one's holds only the top layers' trained weights,
    `ser.finetune.tuning.trained_state`). `CheckpointError` for an unreadable file."""
    weights = checkpoint_dir(run_dir) / f"{key}.safetensors"
    try:
        with safe_open(str(weights), "pt") as f:
            names = [k for k in list(f.keys()) if k.startswith("model.")]  # no __iter__
            shapes = [f.get_slice(k).get_shape() for k in names]
    except (OSError, ValueError, SafetensorError) as err:
        raise CheckpointError(f"checkpoint {weights} cannot be read ({err})") from None
    return sum(math.prod(shape) for shape in shapes)


def _which(meta: object, key: str) -> str:
    """A checkpoint's seed and fold as its sidecar records them (its key when it does not)."""
    if isinstance(meta, dict) and "seed" in meta and "fold" in meta:
        return f"seed {meta['seed']}, fold {meta['fold']}"
    return key


def load_run_checkpoints(run_dir: Path, which: str = "folds") -> list[Checkpoint]:
    """The checkpoints a prediction uses: "folds" (every (seed, fold)), "final", or keys
    (comma-separated). The members run.json records must be whole: a missing or
    unreadable one is named and refused (`check_members`), never averaged without."""
    keys = checkpoint_keys(run_dir)
    recorded = run_members(run_dir) or []
    if not keys and (refusal := no_checkpoints(Path(run_dir), recorded)) is not None:
        raise refusal
    members = all_members(run_dir, recorded)
    if which == "folds":
        chosen = [k for k in members if k != FINAL]
    else:
        chosen = [k.strip() for k in which.split(",") if k.strip()]
        if not chosen or any(k not in members for k in chosen):
            raise CheckpointError(
                f"{run_dir} has no checkpoint {which!r}: it has {', '.join(keys)}"
                + ("" if which != FINAL else " (train with --final for one)")
            )
    check_members(run_dir, chosen, members, "--checkpoint")
    return [load_checkpoint(run_dir, k) for k in chosen]


def no_checkpoints(run_dir: Path, recorded: Sequence[str]) -> CheckpointError | None:
    """Why `run_dir`, which holds no whole checkpoint, gives none, and what to do, in one
    sentence; None where files of a `recorded` member are there in part, which
    `check_members` names one by one."""
    if not run_dir.exists():
        return RunNotFound(
            f"{run_dir} does not exist: give the folder of a trained run (<out>/<name>, "
            f"which holds its {RECORD}) or of a `ser export`"
        )
    if run_dir.suffix.lower() in STORE_SUFFIXES:
        return CheckpointError(
            f"{run_dir} is a feature store, not a run: give the folder of a run trained on "
            "it, <out>/<name>"
        )
    if not run_dir.is_dir():
        return CheckpointError(
            f"{run_dir} is a file, not a run's folder: give the folder that holds its {RECORD}"
        )
    if not (run_dir / RECORD).is_file():
        return CheckpointError(_not_a_run(run_dir))
    folder = checkpoint_dir(run_dir)
    if any((folder / f"{k}{s}").exists() for k in recorded for s in (".json", ".safetensors")):
        return None
    if recorded:
        gone = "is gone" if not folder.is_dir() else "holds none of them"
        return CheckpointError(
            f"{run_dir}: the checkpoints of the {len(recorded)} member(s) its {RECORD} "
            f"records are missing (its {CHECKPOINTS}/ folder {gone}): train the run again "
            "with the options it was trained with and without --overwrite (its `ser train` "
            "command, or `ser.train`), which trains them again and keeps its record"
        )
    return CheckpointError(
        f"{run_dir} holds no checkpoints (a run trained before ser saved them, or one "
        "that has not finished a fold): train it again with `ser train ... --overwrite` "
        "to get them"
    )


def _not_a_run(folder: Path) -> str:
    """What a folder without run.json is, when it is not a run's, and what to give."""
    runs = sorted(p.parent for p in folder.glob(f"*/{RECORD}"))
    if runs:
        return f"{folder} is a folder of runs, not a run: give one of them, such as {runs[0]}"
    return (
        f"{folder} is not a run's folder (it holds no {RECORD}): give the folder `ser train` "
        "wrote for the run, <out>/<name>"
    )


def recorded_members(record: RunRecord) -> list[str]:
    """The checkpoint keys a run record says the run trained: each (seed, fold), and
    `final` when it trained one."""
    folds = [fold_key(e.seed, e.fold) for e in record.folds]
    return [*dict.fromkeys(folds), *([FINAL] if record.final is not None else [])]


def run_members(run_dir: Path) -> list[str] | None:
    """`recorded_members` of the run's run.json (None: none readable, as in a folder of
    checkpoints alone: its checkpoints are then all there is to check against)."""
    try:
        return recorded_members(read(Path(run_dir) / RECORD))
    except (ReportError, OSError):
        return None


def all_members(run_dir: Path, recorded: Sequence[str]) -> list[str]:
    """The members the record lists and the checkpoints there are, sorted: one the
    record lists counts whether its files are whole or not."""
    return sorted({*recorded, *checkpoint_keys(run_dir)})


def member_problem(run_dir: Path, key: str) -> str | None:
    """What makes checkpoint `key` unusable (a file missing, unreadable, or not the bytes
    written: its sidecar's sha256), or None."""
    folder = checkpoint_dir(run_dir)
    sidecar, weights = folder / f"{key}.json", folder / f"{key}.safetensors"
    if not sidecar.is_file():
        return f"checkpoint {sidecar} (the sidecar of {key}) is missing"
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return f"checkpoint {sidecar} cannot be read ({err})"
    if not weights.is_file():
        return f"checkpoint {weights} (the weights of {_which(meta, key)}) is missing"
    try:
        with safe_open(str(weights), "pt"):
            pass
        problem = weights_mismatch(weights_sha256(weights), meta)
    except (OSError, ValueError, SafetensorError) as err:
        problem = f"cannot be read ({err})"
    return f"checkpoint {weights} ({_which(meta, key)}) {problem}" if problem else None


def weights_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def weights_mismatch(digest: str, meta: Mapping[str, Any]) -> str:
    """Why weights of sha256 `digest` are not those `meta` (a sidecar, an export's config)
    recorded as written ("" when they are, or when it recorded none: an older ser's)."""
    recorded = meta.get(WEIGHTS_SHA256)
    if recorded is None or digest == recorded:
        return ""
    return "is damaged (its bytes differ from those written: their sha256 is not the one recorded)"


def load_weights(path: Path, meta: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], str]:
    """A weights file's tensors, read once, and `weights_mismatch` with what `meta` holds."""
    data = path.read_bytes()
    return load(data), weights_mismatch(hashlib.sha256(data).hexdigest(), meta)


def check_members(run_dir: Path, chosen: Sequence[str], recorded: Sequence[str], flag: str) -> None:
    """Refuse (`CheckpointError`) when a `chosen` member is missing or unreadable: each
    named with its problem, and the whole ones of `recorded` given for `flag`."""
    problems = [p for k in chosen if (p := member_problem(run_dir, k)) is not None]
    if not problems:
        return
    whole = [k for k in recorded if k != FINAL and member_problem(run_dir, k) is None]
    told = f"use the whole ones with {flag}={','.join(whole)}, or " if whole else ""
    one = len(problems) == 1
    raise CheckpointError(
        f"{'; '.join(problems)}: {told}delete {'it' if one else 'what is left of them'} and "
        "run the run's `ser train` command again, which trains "
        f"{'that fold' if one else 'those folds'} again and keeps the others"
    )


def save_fold_checkpoint(
    run: Prepared,
    key: str,
    state: Mapping[str, torch.Tensor],
    zscore: Mapping[str, ZScore],
    scale: ZScore | None = None,
    **extra: Json,
) -> None:
    """Write `run`'s checkpoint `key` with the store's provenance of its sets, the
    attribute targets' `scale` (if any) and `extra` (seed, fold, test, ...)."""
    inputs = [run.data.features[spec.name].feature for spec in run.specs]
    folder = checkpoint_dir(run_dir(run.config))
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in state.items()}
    for name, z in zscore.items():
        tensors[f"zscore.{name}.mean"] = z.mean.detach().float().cpu().contiguous()
        tensors[f"zscore.{name}.std"] = z.std.detach().float().cpu().contiguous()
    if scale is not None:
        for name, t in zip(SCALE, scale, strict=True):
            if t is not None:  # (the targets' range is always fitted)
                tensors[name] = t.detach().float().cpu().contiguous()
    targets = run_targets(
        run.config
    )  # only where not the category alone: sidecars stay as they were
    kept = {"targets": targets.to_record()} if targets != Targets() else {}
    sidecar = {
        "model": config_record(run.config.model),
        "classes": list(run.data.classes),
        "specs": [_spec_record(s) for s in run.specs],
        "unit": run.unit,
        "precision": run.config.precision,
        "features": run.provenance,
        **({"layers": encode(layers)} if (layers := layers_record(inputs)) else {}),
        **({"finetune": run.tuning.record()} if run.tuning is not None else {}),
        **kept,
        **extra,
        "format": FORMAT,
        "key": key,
    }
    what = f"the checkpoint {key}"
    # A full disk is safetensors' own error, which `atomic` reads as a DiskFullError.
    atomic(folder / f"{key}.safetensors", lambda tmp: save_file(tensors, str(tmp)), what)
    # safetensors checks its header, not the tensors' bytes: those are checked by this.
    sidecar[WEIGHTS_SHA256] = weights_sha256(folder / f"{key}.safetensors")
    text = json.dumps(sidecar, indent=1)
    atomic(folder / f"{key}.json", lambda tmp: tmp.write_text(text, encoding="utf-8"), what)


def save_member(
    job: Job,
    state: Mapping[str, torch.Tensor],
    zscore: Mapping[str, ZScore],
    scale: ZScore | None,
    extra: Mapping[str, Json],
) -> None:
    """A trained (seed, fold) member's checkpoint, named by its seed and fold
    (`fold_key`): its weights, its training side's statistics and what its sidecar says
    of its training (`extra`: its selected epoch, its test predictions, its temperature)."""
    seed, fold = job.seed, job.fold.name
    save_fold_checkpoint(
        job.run, fold_key(seed, fold), state, zscore, scale=scale, seed=seed, fold=fold, **extra
    )


def _spec_record(spec: InputSpec) -> dict[str, Any]:
    """An input spec as the sidecar holds it; `layers` only for a layered input and
    `gather` only for a fine-tuned one, so a plain run's sidecar stays as it was."""
    record = dataclasses.asdict(spec)
    if spec.layers == 1:
        del record["layers"]
    if spec.gather is None:
        del record["gather"]
    return record


def located(attrs: dict[str, Any]) -> dict[str, Any]:
    """`attrs` with each model location (`LOCATIONS`) named relative to this directory
    resolved, when that folder is here (a location is not part of the fingerprint)."""
    for key in LOCATIONS:
        value = attrs.get(key)
        if isinstance(value, str) and not Path(value).expanduser().is_absolute():
            attrs[key] = model_location(value)
    return attrs
