"""What `ser export` costs, and onnxruntime against torch (CPU).

1. Export and load: the folder's export time, size and the time `ser predict --model`
   takes to read it back (members rebuilt), for
   - the demo's MSMSER run (bench_predict's setup: the demo corpus, tiny HuBERT + MPNet,
     the demo's MIT settings), `--with-encoders`, then `--with-encoders --onnx`;
   - a paper-size MSMSER (d 768, 8 heads, 30 queries; HuBERT-base and MPNet-sized inputs,
     768 each) with random weights, five leave-one-session-out members: `--members all`
     (safetensors), and `--members best --onnx` (the head's graph).
2. Utterances per second, onnxruntime against torch, at the same thread count:
   - the head alone: the paper-size MSMSER on 64 utterances of 4.5 s (225 HuBERT frames,
     20 MPNet tokens of random features), `ensemble.outputs` against the head graph
     (best of 3 after a warm-up);
   - with HuBERT-base (random weights, its real config: bench_extract.save_hubert_base):
     an audio-only paper-size MSMSER exported `--with-encoders --onnx`, then
     `ser.predict.run.predict` of 16 wavs of 4 s with `--runtime torch` and `onnx`
     (decoding included, as a user meets it; best of 2 after a warm-up).

Run:
    .venv/bin/python benchmarks/bench_export.py --workdir /tmp/be --threads 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import soundfile
import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_extract import save_hubert_base
from bench_predict import setup

PAPER = {"fusion": "mit", "d_model": 768, "heads": 8, "queries": 30}
FRAMES, TOKENS, DIM = 225, 20, 768


def fake_run(base: Path, out: Path, specs: list[dict], features: dict, folds: int) -> Path:
    """A run folder holding `folds` paper-size MSMSER checkpoints (random weights) on
    `specs`, with `base`'s record (its folds renamed) and `features` as provenance."""
    from ser.models import ModelConfig, build_model
    from ser.models.batch import InputSpec
    from ser.models.registry import config_record

    shutil.rmtree(out, ignore_errors=True)
    (out / "checkpoints").mkdir(parents=True)
    record = json.loads((base / "run.json").read_text())
    sidecar = json.loads(next((base / "checkpoints").glob("seed0_*.json")).read_text())
    config = ModelConfig(**PAPER)
    entries = []
    for k in range(folds):
        torch.manual_seed(k)
        model = build_model(config, [InputSpec(**s) for s in specs], 4, 0)
        key, fold = f"seed0_session{k + 1}", f"session{k + 1}"
        save_file({f"model.{n}": t.contiguous() for n, t in model.state_dict().items()},
                  str(out / "checkpoints" / f"{key}.safetensors"))  # fmt: skip
        meta = {**sidecar, "model": config_record(config), "specs": specs, "features": features,
                "key": key, "fold": fold, "layers": {}}  # fmt: skip
        (out / "checkpoints" / f"{key}.json").write_text(json.dumps(meta))
        curves = {"epoch": [1], "val_ua": [50.0 + k]}
        entries.append({**record["folds"][0], "fold": fold, "best_epoch": 1, "curves": curves})
    record.update(folds=entries, name=out.name, store=None)
    (out / "run.json").write_text(json.dumps(record))
    return out


def export(run: Path, out: Path, **options: object) -> dict[str, float]:
    from ser.export.folder import load_exported
    from ser.export.write import ExportConfig, export_run

    result = export_run(ExportConfig(str(run), str(out), overwrite=True, **options))  # type: ignore[arg-type]
    started = time.perf_counter()
    for ckpt in load_exported(out, stand_ins=True).checkpoints:
        ckpt.build("cpu")
    return {"export_s": result.seconds, "load_s": time.perf_counter() - started,
            "mib": result.size / 2**20, "files": len(result.files)}  # fmt: skip


def head_speed(folder: Path, threads: int, n: int = 64) -> dict[str, float]:
    """Utterances/s of the head alone: torch's ensemble against the head graph."""
    from ser.export.folder import load_exported
    from ser.predict.ensemble import ensemble, memory_data
    from ser.predict.onnx import open_onnx

    exported = load_exported(folder, stand_ins=True)
    ckpts = exported.checkpoints
    rng = np.random.default_rng(0)
    arrays = {s.name: [rng.standard_normal((FRAMES if s.modality == "audio" else TOKENS, DIM))
                       .astype(np.float32) for _ in range(n)] for s in ckpts[0].specs}  # fmt: skip
    onnx = open_onnx(exported, threads)
    timings = {}
    for name, run in (
        ("torch", lambda: ensemble(ckpts, memory_data(ckpts[0], arrays, torch.device("cpu")))),
        ("onnxruntime", lambda: onnx.score(ckpts[0], arrays)),
    ):
        run()  # warm-up
        timings[f"{name}_utt_s"] = n / best_of(run, 3)
    return timings


def best_of(run: object, repeats: int) -> float:
    """The fastest of `repeats` calls (seconds): the machine is shared, noise only adds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times)


def hubert_run(work: Path, base: Path) -> Path:
    """An audio-only paper-size MSMSER on HuBERT-base's last layer (random weights)."""
    from ser.cache.fingerprint import fingerprint
    from ser.extract.speech import SpeechExtractor, SpeechOptions

    folder = work / "hubert-base"
    if not folder.exists():
        save_hubert_base(folder)
    spec = SpeechExtractor(SpeechOptions(model=str(folder), layers="last")).specs()[0]
    attrs = {**spec.attrs, "fingerprint": fingerprint(spec.attrs)}
    specs = [{"name": spec.name, "modality": "audio", "dim": DIM, "view": "sequence"}]
    features = {spec.name: {"fingerprint": attrs["fingerprint"], "attrs": attrs}}
    return fake_run(base, work / "runs" / "paper_hubert", specs, features, 1)


def pipeline_speed(run: Path, work: Path, n: int = 16) -> dict[str, float]:
    """Utterances/s of `ser predict --model` on 4 s wavs, torch against onnxruntime."""
    from ser.predict.run import PredictConfig, predict

    folder = work / "exports" / "paper_hubert"
    timings = export(run, folder, with_encoders=True, onnx=True)
    rng = np.random.default_rng(1)
    wavs = []
    for i in range(n):
        path = work / "wavs" / f"u{i}.wav"
        path.parent.mkdir(exist_ok=True)
        soundfile.write(path, (rng.standard_normal(4 * 16000) * 0.1).astype(np.float32), 16000)
        wavs.append(str(path))
    for runtime in ("torch", "onnx"):
        config = PredictConfig("", tuple(wavs), device="cpu", model=str(folder), runtime=runtime)
        predict(dataclasses.replace(config, inputs=tuple(wavs[:2])))  # warm-up
        timings[f"{runtime}_utt_s"] = n / best_of(lambda c=config: predict(c), 2)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_export"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.workdir.mkdir(parents=True, exist_ok=True)
    demo, _ = setup(args.workdir, epochs=2)
    out = args.workdir / "exports"
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    print("demo run, --with-encoders:", export(demo, out / "demo", with_encoders=True))
    print(
        "demo run, --with-encoders --onnx:",
        export(demo, out / "demo_onnx", with_encoders=True, onnx=True),
    )
    features = json.loads(next((demo / "checkpoints").glob("seed0_*.json")).read_text())["features"]
    specs = [{"name": n, "modality": f["attrs"]["modality"], "dim": DIM, "view": "sequence"}
             for n, f in features.items()]  # fmt: skip
    paper = fake_run(demo, args.workdir / "runs" / "paper", specs, features, folds=5)
    print("paper-size MSMSER, 5 members:", export(paper, out / "paper"))
    print(
        "paper-size MSMSER, best member --onnx:",
        export(paper, out / "paper_onnx", members="best", onnx=True),
    )
    print(
        "head alone (paper-size MSMSER, 64 utterances):",
        head_speed(out / "paper_onnx", args.threads),
    )
    print(
        "HuBERT-base + head, 16 wavs of 4 s:",
        pipeline_speed(hubert_run(args.workdir, demo), args.workdir),
    )


if __name__ == "__main__":
    main()
