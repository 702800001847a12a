"""`ser claims`: whether runs show the papers' claims, with the numbers and the rule."""

from __future__ import annotations

from pathlib import Path

import click

from ser.report.runs import load_run
from ser.sweep import claims

RUN = click.Path(path_type=Path)


def _metric(value: str) -> str:
    if not claims.known(value):
        raise click.BadParameter(
            f"{value!r} is not one of {', '.join(claims.METRICS)} nor a further head's "
            "<head>_<score>"
        )
    return value


@click.command("claims")
@click.option("--fused", type=RUN, help="Claim (a): the fused run (with --single).")
@click.option(
    "--single",
    "singles",
    multiple=True,
    type=RUN,
    help="Claim (a): a single-modality run; repeat for each modality.",
)
@click.option("--rmm-sweep", type=RUN, help="Claim (b): a `ser sweep msmser-table3` --out folder.")
@click.option(
    "--asr-check",
    type=RUN,
    help="A run on an untrained Whisper's transcripts: reported as a check of the "
    "ASR path (WER, UA against chance), never as a result.",
)
@click.option(
    "--attributes",
    type=RUN,
    help="Claim (c): a run trained on emotion attributes; its CCC per attribute against a "
    "constant prediction's.",
)
@click.option(
    "--sentiment",
    type=RUN,
    help="Claim (d): a `ser sweep mosei-sentiment` --out folder; its text, audio and fused "
    "rows against a constant predictor (the training median) on Acc-2 and MAE.",
)
@click.option(
    "--metric",
    default="ua",
    show_default=True,
    callback=lambda _ctx, _param, value: _metric(value),
    help="The score compared: ua, wa, f1; for runs on emotion attributes ccc_mean (the "
    "mean of the attributes' CCC), ccc_<attribute> or pearson_<attribute>; for runs "
    "with a further head its <head>_<score> (sentiment_wf1, multilabel_map; "
    'docs/train.md, "Heads").',
)
def claims_command(
    fused: Path | None,
    singles: tuple[Path, ...],
    rmm_sweep: Path | None,
    asr_check: Path | None,
    attributes: Path | None,
    sentiment: Path | None,
    metric: str,
) -> None:
    """Whether the runs show (a) fusion beating the best single modality, (b) random
    modality masking helping MSMSER's masked tests, (c) attribute heads learning and (d)
    the sentiment score beating a constant predictor, over seeds, by the printed rule."""
    if (fused is None) != (not singles):
        raise click.UsageError("claim (a) needs --fused and at least one --single")
    if not (fused or rmm_sweep or asr_check or attributes or sentiment):
        raise click.UsageError(
            "give --fused/--single, --rmm-sweep, --attributes, --sentiment or --asr-check"
        )
    found = []
    if fused is not None:
        found.append(claims.fusion_claim(load_run(fused), [load_run(p) for p in singles], metric))
    if rmm_sweep is not None:
        found.append(claims.rmm_claim(rmm_sweep, metric))
    if attributes is not None:
        found.append(claims.attribute_claim(load_run(attributes)))
    if sentiment is not None:
        from ser.sweep.sentiment_claim import constant_claim

        found.append(constant_claim(sentiment))
    check = None if asr_check is None else claims.asr_check(load_run(asr_check))
    uses_metric = fused is not None or rmm_sweep is not None or asr_check is not None
    click.echo(claims.claims_text(found, check, metric if uses_metric else None), nl=False)


COMMANDS: list[click.Command] = [claims_command]
