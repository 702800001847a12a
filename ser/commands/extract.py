"""`ser extract`: run the feature extractors over a corpus into a feature store.

Exit codes: 0 when every requested set is complete without failures (extracted now or
found done); 1 when utterances of them (or of the ASR transcripts) failed, now or when
extracted (the store is still complete: they have zero rows and a recorded reason); 2 for
bad input (unknown options, locked store, sets with other provenance, a missing or
unloadable --asr-model); 130 on Ctrl-C.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ser.commands.extract_summary import print_summary, report_summary
from ser.commands.options import (
    THREADS_HELP,
    audio_root_option,
    classes_option,
    corpus_option,
    interrupted,
)
from ser.commands.outputs import output_store
from ser.errors import ConfigError
from ser.extract.registry import (
    KINDS,
    default_kinds,
    flags,
    kind_options,
    parse_kinds,
    parse_names,
)
from ser.extract.views import TEXT_NOTE, parse_augment
from ser.runtime.device import DEVICE_HELP
from ser.runtime.precision import PRECISIONS, auto_help

# The run-wide options that decide the outputs (the receipt's key holds them).
_DECIDING = (
    "classes",
    "device",
    "precision",
    "batch_seconds",
    "batch_tokens",
    "shard_size",
    "asr_max_new_tokens",
)


def _kinds(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, ...]:
    try:
        return parse_kinds(part.strip() for part in value.split(",") if part.strip())
    except ConfigError as error:
        raise click.BadParameter(str(error)) from error


def _count_option(flag: str, help: str) -> Callable[[Any], Any]:
    """An option taking a count N >= 1; None (not given) is its default, named in `help`."""
    return click.option(flag, type=click.IntRange(min=1), metavar="N", help=help)


class _ExtractCommand(click.Command):
    """`ser extract`, with --features and the kinds' flags as registered when it runs."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        # Made once per command line: parsing and processing must see the same objects.
        if "ser.extract.params" not in ctx.meta:
            params = super().get_params(ctx)
            ctx.meta["ser.extract.params"] = [*params[:2], *_registry_params(), *params[2:]]
        return list(ctx.meta["ser.extract.params"])


def _registry_params() -> list[click.Parameter]:
    """--features, then each kind's flags."""
    features = click.Option(
        ["--features"],
        default=",".join(default_kinds()),
        show_default=True,
        callback=_kinds,
        help=f"Comma-separated extractors to run, of {','.join(KINDS)}.",
    )
    kinds = [
        click.Option(
            [f"--{flag.param.replace('_', '-')}", flag.param],
            is_flag=flag.type is bool,
            default=None,
            type=None if flag.type is bool else flag.type,
            metavar=flag.metavar,
            help=flag.help,
        )
        for flag in flags().values()
    ]
    return [features, *kinds]


@click.command("extract", cls=_ExtractCommand)
@click.argument("corpus_root", type=click.Path(path_type=Path))
@click.option(
    "--store",
    required=True,
    type=click.Path(path_type=Path),
    help="Feature store (.zarr directory or .h5 file); created when missing.",
)
@corpus_option()
@audio_root_option()
@classes_option("Label set whose utterances the manifest holds.")
@click.option(
    "--name",
    "names",
    multiple=True,
    metavar="[KIND=]NAME",
    help="Feature set name instead of the model's id (speech encoders: NAME.L<layer>). A bare NAME "
    "needs a single model extractor in --features; else say which: --name bert=NAME.",
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    metavar="auto|cpu|cuda[:N]",
    help=DEVICE_HELP,
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="auto",
    show_default=True,
    help=f"Of the pretrained models. {auto_help('extract')} "
    "Recorded in the feature sets' provenance.",
)
@click.option(
    "--batch-seconds",
    type=click.FloatRange(min=0, min_open=True),
    metavar="S",
    help="Padded seconds of audio per forward call [default: 10 on CPU, 240 on GPU].",
)
@_count_option(
    "--batch-tokens", "Padded tokens per forward call [default: 512 on CPU, 16384 on GPU]."
)
@click.option(
    "--shard-size",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Utterances per shard (the unit of resume); keep it when resuming.",
)
@_count_option("--workers", "Run shards on a local dask cluster of N worker processes.")
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Run shards on an existing dask.distributed scheduler (shared filesystem).",
)
@_count_option("--threads", f"{THREADS_HELP} With --workers N: each worker's count [cores // N].")
@_count_option(
    "--processes",
    "Local processes per kind, each decoding and extracting whole batches; the shards "
    "commit here [default: one per core for is13, which computes off torch; 1 for the rest].",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace feature sets that exist with other provenance (model, layer, settings).",
)
@click.option(
    "--repair",
    is_flag=True,
    help="Read every chunk of the requested sets that are complete and re-extract what is "
    "damaged (`ser store verify` names it): the shards holding its utterances, written back "
    "over them. Give the options that made the sets.",
)
@click.option(
    "--text-source",
    type=click.Choice(["gold", "asr"]),
    default="gold",
    show_default=True,
    help="Transcripts of the text features. asr: transcribe every utterance with "
    "--asr-model into the store (transcript set asr-<model>) and extract the text sets "
    "from those, as <text model>@asr-<model>.",
)
@click.option(
    "--asr-model",
    metavar="ID_OR_DIR",
    help="Whisper model of --text-source asr (hub id or folder) [default: openai/whisper-small].",
)
@_count_option("--asr-max-new-tokens", "Longest ASR transcript in tokens [default: 128].")
@_count_option("--asr-batch-size", "Utterances per Whisper call [default: 8 on CPU, 32 on GPU].")
@click.option(
    "--augment",
    multiple=True,
    metavar="speed=F,..|noise=DB,..",
    help="Views of every audio set, each extracted beside it (one more extraction each): "
    "speed=0.9,1.1 (speed perturbation: <set>.speed0.9, <set>.speed1.1; a factor over 0.5, "
    "at most 2, not 1), noise=20 (white noise at 20 dB SNR: <set>.noise20db; from -5 to "
    "60 dB). Repeatable. Text sets get none.",
)
@click.option("--quiet", "-q", is_flag=True, help="No disk estimate, no progress bar.")
def extract(
    corpus_root: Path,
    store: Path,
    features: tuple[str, ...],
    names: tuple[str, ...],
    text_source: str,
    asr_model: str | None,
    quiet: bool,
    **values: Any,  # click's: the other options' values, each of its option's type
) -> None:
    """Extract features of CORPUS_ROOT (a corpus in one of the layouts --corpus lists: an
    IEMOCAP_full_release folder, a CREMA-D root, a manifest file...) into --store.

    Resumable: a killed run continues where it stopped; re-running a finished command
    does nothing. Example:

    \b
        ser extract IEMOCAP_full_release --store features.zarr --features hubert,bert \\
            --hubert-layers 9,12

    Any Hugging Face encoder, every layer, and utterance-level means of each:

    \b
        ser extract IEMOCAP_full_release --store features.zarr --features speech,text \\
            --speech-model microsoft/wavlm-base-plus --text-model roberta-base \\
            --layers all --pool mean

    A set `ser store verify` finds damaged: the same command with --repair.

    ASR text (text sets from Whisper's transcripts, beside the gold ones):

    \b
        ser extract IEMOCAP_full_release --store features.zarr --features mpnet,bert \\
            --text-source asr --asr-model openai/whisper-small
    """
    from ser.cache.model_names import DEFAULT_ASR_MODEL
    from ser.cache.receipts import check_receipt, request_key, write_receipt
    from ser.corpus.options import ReadOptions

    options = kind_options(values, features)
    try:
        for name, stem in parse_names(names, features).items():
            options.setdefault(name, {})["name"] = stem
    except ConfigError as error:
        raise click.BadParameter(str(error), param_hint="--name") from error
    for name in features:  # a kind's options checked before the receipt reads its model
        KINDS[name].make_options(**options.get(name, {}))
    kind_flags = flags()  # built once: each call walks every kind's option fields
    run = {k: v for k, v in values.items() if k not in kind_flags}
    asr_options = (asr_model, run["asr_max_new_tokens"], run["asr_batch_size"])
    if text_source == "gold" and any(v is not None for v in asr_options):
        raise click.BadParameter("--asr-* options need --text-source asr", param_hint="--asr-model")
    run["augment"] = tuple(view.spec for view in parse_augment(run["augment"]))
    text = [k for k in features if KINDS[k].extractor.modality == "text"]
    if run["augment"] and text:
        click.echo(f"note: {', '.join(text)}: {TEXT_NOTE}")
    asked = {
        "features": features,
        "options": options,
        "text_source": text_source,
        "store": str(store.resolve()),
        **{k: run[k] for k in _DECIDING},
    }
    models = {
        k: options.get(k, {}).get("model") or KINDS[k].default("model")
        for k in features
        if "model" in KINDS[k].fields
    }
    if text_source == "asr":
        models["asr"] = asr_model or DEFAULT_ASR_MODEL
    if run["corpus"] is not None:  # a key made without it stays what it was
        asked["corpus"] = run["corpus"]
    if run["augment"]:
        asked["augment"] = run["augment"]
    read_options = ReadOptions(run["audio_root"])
    if run["audio_root"] is not None:
        asked["audio_root"] = str(run["audio_root"].resolve())
    key = request_key(corpus_root, asked, models, run["corpus"], read_options)
    done = None if key is None or run["overwrite"] or run["repair"] else check_receipt(store, key)
    if done is not None:
        # A finished request: answer from the receipt, before torch is even imported.
        print_summary(True, store, done, 0.0)
        sys.exit(1 if done["failures"] else 0)

    output_store(store)  # a finished request above read it, the rest writes there
    from transformers.utils import logging as hf_logging

    from ser.extract.run import ExtractConfig, extract_features

    hf_logging.disable_progress_bar()  # our own bar shows progress; theirs is per load
    config = ExtractConfig(
        features=features,
        options=options,
        text_source=text_source,
        asr_model=asr_model,
        progress=not quiet,
        **run,
    )
    try:
        report = extract_features(corpus_root, store, config)
    except KeyboardInterrupt:
        interrupted("interrupted: finished shards are kept; run the same command to resume")
    summary = report_summary(report)
    if key is not None:
        write_receipt(store, key, summary)
    print_summary(report.nothing_to_do, report.store, summary, report.seconds)
    for line in report.repaired:
        click.echo(f"repaired {line}")
    if config.repair and report.nothing_to_do:
        click.echo("repair: no damage found in the requested sets")
    if report.exit_code:
        n = len({utt_id for _, utt_id, _ in report.failures})
        click.echo(
            f"error: {n} utterance(s) could not be extracted (listed above); the "
            "store is complete, they have zero rows",
            err=True,
        )
        sys.exit(report.exit_code)


COMMANDS: list[click.Command] = [extract]
