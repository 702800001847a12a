"""Fine-tuning an encoder's top k layers: from the feature store's cached layer N-k, against
from audio through the whole encoder at every step.

The same model trains in every variant: HuBERT's top k layers (`ser.finetune.TopLayers`,
all their parameters trained) and a small head (masked mean over frames, a linear layer to
4 classes), with one Adam (the top layers at 1e-5, the head at 1e-3, as `ser train
--finetune` groups them), over the same batches of utterances. A step is timed from its
batch in memory to the optimiser's step done (CUDA synchronised), after warm-up steps, at
`ser train`'s precision (`--precision auto`: bf16 autocast on CUDA, fp32 on the CPU).

- ``cache``: the batch is layer N-k's rows [B, T, D] and their mask, as the store hands
  them (float32; made here by the bottom layers from the batch's audio, once, untimed).
- ``recompute``: the batch is padded audio [B, samples] and its mask; the conv front end
  and the bottom N-k layers run under `torch.no_grad` (the best a toolkit that tunes only
  the top k can do), then the same top layers and head.
- ``recompute_grad`` (unless `--no-grad-variant`): as `recompute`, but the whole encoder
  runs with autograd (its bottom parameters require grad; only the top k and the head are
  in the optimiser): a toolkit that unfreezes the encoder and steps part of it.

Each repeat runs one epoch (`--steps` batches) of every variant, one after the other, so
a busy neighbour weighs on all alike; the figures are the repeats' medians. Memory, from
one more step of each variant, apart from the timed ones: on CUDA
`torch.cuda.max_memory_allocated` (``peak_mib``; ``step_peak_mib`` above what was
allocated before the step); on the CPU the peak of the tensor bytes the step allocated
above those live before it (``step_peak_mib``, summed from the profiler's per-operation
memory, to an operation's granularity), and the process's RSS high-water mark
(``process_maxrss_mib``, getrusage: every variant, the set-up and Python together, so
only an upper bound).

Sizes: ``demo``, the demo's tiny HuBERT (2 layers, 32 wide), k = 1, batches of 4
utterances of 2-3 s; ``paper``, HuBERT-base from its config with random weights (12
layers, 768 wide, nothing downloaded), k = 2, batches of 8 of 4-6 s at 16 kHz.
``iemocap_epoch_s`` projects a step over IEMOCAP's 4-class set (5531 utterances).

    .venv/bin/python benchmarks/bench_finetune.py --size demo
    .venv/bin/python benchmarks/bench_finetune.py --size paper --steps 1 --no-grad-variant
    python benchmarks/bench_finetune.py --size paper --steps 20 --device cuda --json  # gpu.sh

A table goes to stderr; the result is one JSON object on stdout. Figures:
benchmarks/README.md ("Fine-tuning from the cache").
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ser.runtime.threads import brief_waits

# As the `ser` command does, before torch loads OpenMP (which reads its wait setting once).
brief_waits()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_corpora import cpu_model  # noqa: E402
from torch import nn  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402
from transformers import HubertConfig, HubertModel  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from ser.finetune.top_layers import ARCHITECTURES, TopLayers  # noqa: E402
from ser.runtime.precision import autocast, resolve_precision  # noqa: E402
from ser.synth.tiny import save_tiny_hubert  # noqa: E402

RATE = 16000
CLASSES = 4
IEMOCAP = 5531  # utterances of IEMOCAP's 4-class set: an epoch's
VARIANTS = ("cache", "recompute", "recompute_grad")


@dataclass(frozen=True)
class Size:
    encoder: Callable[[Path], HubertModel]  # given a scratch folder
    k: int
    batch: int
    seconds: tuple[float, float]  # utterance lengths, uniform in this range


SIZES = {
    "demo": Size(lambda tmp: HubertModel.from_pretrained(save_tiny_hubert(tmp)), 1, 4, (2, 3)),
    "paper": Size(lambda _: HubertModel(HubertConfig()), 2, 8, (4, 6)),
}


@dataclass
class Batch:
    """One batch as each variant reads it: audio [B, S] and its mask, layer N-k's rows
    [B, T, D] and their mask (True = real), the labels [B]."""

    audio: torch.Tensor
    audio_mask: torch.Tensor
    rows: torch.Tensor
    row_mask: torch.Tensor
    labels: torch.Tensor


class Head(nn.Module):
    """Masked mean over frames, then a linear layer to the classes."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.out = nn.Linear(dim, CLASSES)

    def forward(self, rows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        real = mask.to(rows.dtype)[..., None]  # [B, T, 1]
        pooled = (rows * real).sum(1) / real.sum(1).clamp_min(1)  # [B, D]
        return self.out(pooled)  # [B, classes]


class Trainee:
    """A variant: its own copy of the top layers and head (the same starting weights in
    every variant), its optimiser, and how its batch reaches the top layers."""

    def __init__(
        self, name: str, bottom: HubertModel, top: TopLayers, head: Head, precision: str
    ) -> None:
        self.name, self.precision = name, precision
        self.device = next(top.parameters()).device
        self.top, self.head = copy.deepcopy(top).train(), copy.deepcopy(head)
        # Only "recompute_grad" keeps the bottom layers' graph: its own copy trains them.
        self.bottom = copy.deepcopy(bottom) if name == "recompute_grad" else bottom
        self.bottom.requires_grad_(name == "recompute_grad")
        self.optimizer = torch.optim.Adam(
            [
                {"params": list(self.top.parameters()), "lr": 1e-5},
                {"params": list(self.head.parameters()), "lr": 1e-3},
            ]
        )

    def step(self, batch: Batch) -> None:
        """Forward, backward and the optimiser's step on `batch` (its loss not read: no
        host sync)."""
        with autocast(self.device, self.precision):
            rows, mask = self.inputs(batch)
            logits = self.head(self.top(rows, mask), mask)
            loss = nn.functional.cross_entropy(logits.float(), batch.labels)
        self.optimizer.zero_grad(set_to_none=True)
        self.bottom.zero_grad(set_to_none=True)  # "recompute_grad": grads no one steps
        loss.backward()
        self.optimizer.step()

    def loss(self, batch: Batch) -> float:
        """`batch`'s loss before training, without dropout: the same in every variant
        (the same weights and batch; the cut at layer N-k is exact), to bf16's rounding
        under bf16 (the cached rows are float32, as the store hands them)."""
        self.top.eval()
        with torch.no_grad(), autocast(self.device, self.precision):
            rows, mask = self.inputs(batch)
            logits = self.head(self.top(rows, mask), mask)
        self.top.train()
        return round(float(nn.functional.cross_entropy(logits.float(), batch.labels)), 5)

    def inputs(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        if self.name == "cache":
            return batch.rows, batch.row_mask
        with torch.set_grad_enabled(self.name == "recompute_grad" and torch.is_grad_enabled()):
            return bottom_rows(self.bottom, batch.audio, batch.audio_mask)


def bottom_rows(
    bottom: HubertModel, audio: torch.Tensor, audio_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Layer N-k's rows [B, T, D] and their mask [B, T] from audio [B, S]: `bottom` keeps
    layers 0..N-k-1, and a post-LN HuBERT (base) puts no norm after its last layer, so its
    output is hidden state N-k, the set `ser extract` stores."""
    rows = bottom(audio, attention_mask=audio_mask).last_hidden_state
    frames = rows.shape[1]
    mask = bottom._get_feature_vector_attention_mask(frames, cast(torch.LongTensor, audio_mask))
    return rows, mask.bool()


def models(size: Size, seed: int) -> tuple[HubertModel, TopLayers, Head]:
    """The encoder's bottom layers (frozen, eval: no dropout, no time masking), its top k
    (`TopLayers`, the same weights) and a head, from `seed`."""
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        encoder = size.encoder(Path(tmp)).eval()
    config = encoder.config
    if config.do_stable_layer_norm:
        raise SystemExit("the bottom's output is hidden state N-k only for a post-LN HuBERT")
    n = config.num_hidden_layers
    top = TopLayers(copy.deepcopy(encoder), ARCHITECTURES["hubert"], n - size.k, size.k)
    encoder.encoder.layers = encoder.encoder.layers[: n - size.k]
    return encoder, top, Head(config.hidden_size)


def batches(size: Size, steps: int, bottom: HubertModel, precision: str, seed: int) -> list[Batch]:
    """`steps` batches of noise utterances, padded, with the rows the store would hold
    (made at the training's precision: as the recomputing variants see them)."""
    rng, device = np.random.default_rng(seed), next(bottom.parameters()).device
    made = []
    for _ in range(steps):
        lengths = (rng.uniform(*size.seconds, size.batch) * RATE).astype(int)
        audio = np.zeros((size.batch, lengths.max()), np.float32)
        for i, n in enumerate(lengths):
            audio[i, :n] = rng.normal(0, 0.1, n)
        wave = torch.from_numpy(audio).to(device)
        audio_mask = (torch.arange(audio.shape[1]) < torch.from_numpy(lengths)[:, None]).to(device)
        with torch.no_grad(), autocast(device, precision):
            rows, row_mask = bottom_rows(bottom, wave, audio_mask.long())
        labels = torch.from_numpy(rng.integers(0, CLASSES, size.batch)).to(device)
        made.append(Batch(wave, audio_mask.long(), rows.float(), row_mask, labels))
    return made


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def epoch_s(trainee: Trainee, data: list[Batch]) -> float:
    """Seconds for one epoch over `data`, synchronised."""
    sync(trainee.device)
    started = time.perf_counter()
    for batch in data:
        trainee.step(batch)
    sync(trainee.device)
    return time.perf_counter() - started


def step_memory(trainee: Trainee, batch: Batch) -> dict[str, float]:
    """One step's memory, MiB (see the module's docstring)."""
    mib = 1 << 20
    if trainee.device.type == "cuda":
        sync(trainee.device)
        before = torch.cuda.memory_allocated(trainee.device)
        torch.cuda.reset_peak_memory_stats(trainee.device)
        trainee.step(batch)
        sync(trainee.device)
        peak = torch.cuda.max_memory_allocated(trainee.device)
        return {"peak_mib": round(peak / mib, 1), "step_peak_mib": round((peak - before) / mib, 1)}
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        trainee.step(batch)
    # Each operation's own bytes allocated less those freed, in time order: the running
    # sum's peak is the step's above what was live before it (to an operation's
    # granularity: a peak inside one is not seen).
    events = sorted(prof.events(), key=lambda e: e.time_range.start)
    peak = max(itertools.accumulate((e.self_cpu_memory_usage for e in events), initial=0))
    return {"step_peak_mib": round(peak / mib, 1)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    size, device = SIZES[args.size], torch.device(args.device)
    bottom, top, head = models(size, args.seed)
    modules: list[nn.Module] = [bottom, top, head]  # nn.Module's `to`: HF's is typed oddly
    for module in modules:
        module.to(device)
    precision = resolve_precision(args.precision, device, "train")
    if precision == "fp16":  # would need a gradient scaler: not what this compares
        raise SystemExit("fp16 training is not measured here: use --precision fp32 or bf16")
    data = batches(size, args.steps, bottom, precision, args.seed)
    names = [v for v in VARIANTS if v != "recompute_grad" or not args.no_grad_variant]
    trainees = [Trainee(name, bottom, top, head, precision) for name in names]
    first_loss = {t.name: t.loss(data[0]) for t in trainees}
    for trainee, _ in itertools.product(trainees, range(args.warmup)):
        trainee.step(data[0])
    times: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(args.repeats):
        for trainee in trainees:
            times[trainee.name].append(epoch_s(trainee, data))
        line = ", ".join(f"{name} {t[-1]:.2f} s" for name, t in times.items())
        print(f"repeat {repeat + 1}/{args.repeats}: {line}", file=sys.stderr, flush=True)
    result = {name: figures(times[name], args.steps, size.batch) for name in names}
    for trainee in trainees:
        result[trainee.name].update(
            step_memory(trainee, data[0]), first_loss=first_loss[trainee.name]
        )
    return {**result, **ratios(result), **context(args, size, top, data), "precision": precision}


def figures(times: list[float], steps: int, batch: int) -> dict[str, Any]:
    epoch = statistics.median(times)
    return {
        "epoch_s": round(epoch, 4),
        "step_s": round(epoch / steps, 4),
        "iemocap_epoch_s": round(epoch / steps * math.ceil(IEMOCAP / batch), 1),
        "epochs_s": [round(t, 4) for t in times],
    }


def ratios(result: dict[str, Any]) -> dict[str, float]:
    """How many times the cache's step each recompute variant's takes, and its memory."""
    out, cache = {}, result["cache"]
    for name in ("recompute", "recompute_grad"):
        if name in result:
            out[f"{name}_over_cache"] = round(result[name]["step_s"] / cache["step_s"], 2)
            memory = cache["step_peak_mib"]
            if memory > 0:
                out[f"{name}_memory_over_cache"] = round(result[name]["step_peak_mib"] / memory, 2)
    return out


def context(
    args: argparse.Namespace, size: Size, top: TopLayers, data: list[Batch]
) -> dict[str, Any]:
    config, dim = top.config, top.dim
    seconds = sum(float(b.audio_mask.sum()) for b in data) / RATE
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        "size": args.size, "device": args.device, "k": size.k,
        "layers": config.num_hidden_layers, "hidden": config.hidden_size,
        "from_layer": top.from_layer, "batch": size.batch, "steps": args.steps,
        "utterances": size.batch * args.steps, "audio_s": round(seconds, 1),
        "frames_per_batch": [int(b.row_mask.sum()) for b in data][:8],
        "trained_params": sum(p.numel() for p in top.parameters()) + CLASSES * (dim + 1),
        "warmup": args.warmup, "repeats": args.repeats, "process_maxrss_mib": round(rss, 1),
        "threads": torch.get_num_threads(), "load_average": os.getloadavg(),
        "cpu": cpu_model(),
        "card": torch.cuda.get_device_name() if args.device == "cuda" else None,
        "torch": torch.__version__,
    }  # fmt: skip


def table(result: dict[str, Any]) -> Iterator[str]:
    heads = ("step s", "epoch s", "IEMOCAP epoch s", "step MiB", "x cache")
    yield f"{'variant':<16}" + "".join(f"{h:>{len(h) + 2}}" for h in heads)
    for name in VARIANTS:
        if name in result:
            r = result[name]
            ratio = result.get(f"{name}_over_cache", 1.0)
            yield (
                f"{name:<16}{r['step_s']:>8.3f}{r['epoch_s']:>9.2f}{r['iemocap_epoch_s']:>17.1f}"
                f"{r['step_peak_mib']:>10.1f}{ratio:>9.2f}"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=list(SIZES), default="demo")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--precision", default="auto", help="as `ser train --precision` [auto: CUDA bf16, CPU fp32]"
    )
    parser.add_argument("--steps", type=int, default=8, help="batches an epoch [8]")
    parser.add_argument("--warmup", type=int, default=2, help="steps each variant first [2]")
    parser.add_argument("--repeats", type=int, default=3, help="epochs of each, median [3]")
    parser.add_argument("--no-grad-variant", action="store_true", help="leave recompute_grad out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="the result on one line")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    hf_logging.disable_progress_bar()  # the tiny model's save and load: noise in the log
    result = run(args)
    for line in table(result):
        print(line, file=sys.stderr)
    print(json.dumps(result, indent=None if args.json else 1), flush=True)


if __name__ == "__main__":
    main()
