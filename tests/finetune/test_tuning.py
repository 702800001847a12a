"""A model's fine-tuned inputs: the `--finetune` value, the top layers joined to a model,
their optimiser groups and warm-up, and what a checkpoint keeps of them."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from ser.cache import FeatureStore
from ser.errors import ConfigError
from ser.finetune.tuning import (
    FineTune,
    Tuning,
    load_prototype,
    param_groups,
    parse_all,
    restore,
    top_layers,
    trained_state,
    tuned_specs,
    warmup,
)
from ser.models import ModelConfig, build_model
from ser.models.batch import Batch, InputSpec

HUBERT = "tiny-hubert"


def test_a_value_reads_and_is_spelled_one_way() -> None:
    tune = FineTune.parse(" hubert.L9:lora=8,top=3,targets=q_proj/v_proj ")
    assert (tune.feature, tune.top, tune.lora, tune.targets) == (
        "hubert.L9",
        3,
        8,
        ("q_proj", "v_proj"),
    )
    assert tune.spelled == "hubert.L9:top=3,lora=8,targets=q_proj/v_proj"
    assert FineTune.parse(tune.spelled) == tune
    assert tune.name_part == "_ft-hubert.L9-top3-lora8-targetsq_proj+v_proj"
    assert FineTune.parse("x:top=1").encoder_lr == 1e-5  # whole layers
    assert FineTune.parse("x:top=1,lora=4").encoder_lr == 1e-4  # adapters start at zero
    assert FineTune.parse("x:top=1,lr=3e-5").encoder_lr == 3e-5


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("hubert.L9", "give a feature set and its top layers"),
        ("hubert.L9:lora=8", "say how many layers train"),
        ("hubert.L9:top=0", "top must be a whole number of layers (1 or more)"),
        ("hubert.L9:top=1.5", "top must be a whole number of layers (1 or more)"),
        ("hubert.L9:top=two", "top must be a whole number of layers"),
        ("hubert.L9:top=2,lora=0", "lora must be a whole number (LoRA's rank, 1 or more"),
        ("hubert.L9:top=2,lora=2,alpha=0", "alpha must be a whole number (LoRA's scale, 1 or"),
        ("hubert.L9:top=2,lora=2,alpha=-8", "alpha must be a whole number"),
        ("hubert.L9:top=2,alpha=4", "alpha goes with lora"),
        ("hubert.L9:top=2,targets=q", "targets go with lora"),
        ("hubert.L9:top=2,lora=2,targets=", "targets must be module names"),
        ("hubert.L9:top=2,lr=inf", "lr must be a finite number above 0"),
        ("hubert.L9:top=2,lr=nan", "lr must be a finite number above 0"),
        ("hubert.L9:top=2,lr=0", "lr must be a finite number above 0"),
        ("hubert.L9:top=2,warmup=1", "warmup must be a share of the steps, 0 or more and un"),
        ("hubert.L9:top=2,warmup=nan", "warmup must be a share"),
        ("hubert.L9:top=2,norms=fixed", "norms must be one of train, frozen"),
        ("hubert.L9:top=2,depth=3", "unknown key 'depth'"),
        ("hubert.L9:top=2,top=3", "top is given twice"),
        ("hubert.L9:top=2,", "an empty key=value"),
    ],
)
def test_a_bad_value_is_refused_in_one_line(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"{text}: {says}")):
        FineTune.parse(text)


def test_what_is_spelled_is_what_trains() -> None:
    default = FineTune.parse("hubert.L9:top=1,lora=4")
    assert (default.spelled, default.lora_alpha) == ("hubert.L9:top=1,lora=4", 8)
    given = FineTune.parse("hubert.L9:top=1,lora=4,alpha=2")
    assert (given.spelled, given.lora_alpha) == ("hubert.L9:top=1,lora=4,alpha=2", 2)
    assert "(alpha 2)" in given.describe()
    with pytest.raises(ConfigError, match="alpha must be"):
        FineTune("hubert.L9", top=1, lora=4, alpha=0).check()


def test_one_set_tuned_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"hubert\.L9 is named twice"):
        parse_all(["hubert.L9:top=1", "hubert.L9:top=2"])


def _model(layers: int = 1, view: str = "sequence"):  # type: ignore[no-untyped-def]
    """MSMSER (sequence) or the MLP probe (vector) on the tiny HuBERT's layer 2 - layers,
    with its top layers attached."""
    name = f"{HUBERT}.L{2 - layers}"
    fusion = "mit" if view == "sequence" else "none"
    config = (
        ModelConfig(fusion=fusion, d_model=16, heads=2, queries=4)
        if view == "sequence"
        else (ModelConfig(fusion="none"))
    )
    specs = [InputSpec(name, "audio", 32, view)]  # type: ignore[arg-type]
    return build_model(config, specs, n_classes=4, seed=0), name


@pytest.fixture(scope="module")
def store(layered_store: Path) -> FeatureStore:
    return FeatureStore.open(layered_store)


def _batch(store: FeatureStore, name: str, count: int = 3, key: str | None = None) -> Batch:
    """The first `count` utterances' rows of a stored set, zero-padded, with their mask,
    as input `key` (None: the set's name)."""
    data = store.read(name)
    rows = [torch.from_numpy(data.utterance(i).astype(np.float32)) for i in range(count)]
    x = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)  # [B, T, D]
    mask = torch.arange(x.shape[1]) < torch.tensor([len(r) for r in rows])[:, None]
    key = key or name
    return Batch({key: x * mask[..., None]}, {key: mask}, torch.zeros(count, dtype=torch.long),
                 torch.arange(count))  # fmt: skip


def _tuning(store: FeatureStore, text: str) -> Tuning:
    tune = FineTune.parse(text)
    top = load_prototype(tune, tune.feature, dict(store.info(tune.feature).attrs))
    return Tuning({tune.feature: top}, {tune.feature: tune})


@pytest.mark.parametrize("view", ["sequence", "vector"])
def test_frozen_top_layers_give_the_model_what_the_stored_last_layer_gives(store, view) -> None:
    """The family reads from layer 0 through two frozen top layers what it reads from the
    stored layer 2 (the store's float16 rows: within their rounding), and scores alike."""
    tuned, low = _model(2, view)
    plain, high = _model(0, view)
    plain.load_state_dict(tuned.state_dict())
    tuned = _tuning(store, f"{low}:top=2").attach(tuned).eval()
    seen: list[torch.Tensor] = []
    tuned.register_forward_pre_hook(lambda _, args: seen.append(args[0].x[low]))  # after ours
    stored, below = _batch(store, high), _batch(store, low)
    if view == "vector":  # each utterance's mean row, as the data side pools a vector view
        for batch, name in ((stored, high), (below, low)):
            real = batch.mask.pop(name)
            batch.x[name] = batch.x[name].sum(1) / real.sum(1, keepdim=True)  # [B, D]
    with torch.no_grad():
        ours = tuned(_batch(store, low)).logits
        theirs = plain.eval()(stored).logits
    torch.testing.assert_close(seen[0], stored.x[high], atol=2e-3, rtol=0)
    assert (seen[0] - below.x[low]).abs().max() > 8e-3  # layer 0 is not layer 2
    torch.testing.assert_close(ours, theirs, atol=1e-3, rtol=0)


def test_a_set_of_other_weights_is_refused(store) -> None:
    tune = FineTune.parse(f"{HUBERT}.L1:top=1")
    attrs = {**store.info(tune.feature).attrs, "weights_sha256": "0" * 64}
    with pytest.raises(ConfigError, match=r"no longer matches the set tiny-hubert\.L1"):
        load_prototype(tune, tune.feature, attrs)


def test_a_pooled_or_non_encoder_set_is_refused(store) -> None:
    tune = FineTune.parse("tiny-bert:top=1")
    attrs = {**store.info("tiny-bert").attrs, "level": "utterance"}
    with pytest.raises(ConfigError, match="not one layer's frames or tokens"):
        load_prototype(tune, "tiny-bert", attrs)


def test_tuned_specs_gather_rows_and_refuse_an_input_the_model_lacks() -> None:
    specs = [InputSpec("a", "audio", 4, "vector"), InputSpec("b", "text", 4, "vector")]
    tuned = tuned_specs(specs, ["a"])
    assert (tuned[0].view, tuned[0].gathered, tuned[1].gathered) == ("vector", "sequence", "vector")
    with pytest.raises(ConfigError, match="the model does not read it"):
        tuned_specs(specs, ["c"])


def test_groups_give_the_encoder_its_rate_and_warm_up_alone(store) -> None:
    model, name = _model(1)
    model = _tuning(store, f"{name}:top=1,lr=1e-3,warmup=0.5").attach(model)
    groups = param_groups(model, lr=1e-2)
    head, encoder = groups
    assert encoder["lr"] == 1e-3 and head["lr"] == 1e-2
    inside = {id(p) for p in top_layers(model).parameters()}  # type: ignore[union-attr]
    assert {id(p) for p in encoder["params"]} == inside
    assert not inside & {id(p) for p in head["params"]}
    optimizer = torch.optim.Adam(groups)
    schedule = warmup(optimizer, steps=10)  # 5 steps of warm-up
    rates = []
    for _ in range(7):
        rates.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        schedule.step()
    assert [r[0] for r in rates] == [1e-2] * 7
    assert [round(r[1], 6) for r in rates] == [2e-4, 4e-4, 6e-4, 8e-4, 1e-3, 1e-3, 1e-3]


@pytest.mark.parametrize(
    "how", ["top=1", "top=1,lora=4", "top=1,norms=frozen", "top=1,lora=4,norms=frozen"]
)
def test_a_checkpoint_keeps_what_trained_and_rebuilds_the_model(store, how: str) -> None:
    model, name = _model(1)
    tuning = _tuning(store, f"{name}:{how}")
    model = tuning.attach(model, seed=3)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    batch = _batch(store, name, 4)
    for _ in range(3):
        model.train()
        out = model(batch)
        model.loss(out, batch).backward()
        optimizer.step()
        optimizer.zero_grad()
    kept = trained_state(model, model.state_dict())
    tops = {k for k in kept if k.startswith("top_layers.")}
    trained = {
        f"top_layers.{n}" for n, p in top_layers(model).named_parameters() if p.requires_grad
    }  # type: ignore[union-attr]
    assert tops == trained and tops
    if "lora" in how:  # the adapters, and the layer norms unless frozen
        norms = {k for k in tops if "layer_norm" in k}
        assert all("lora_" in k for k in tops - norms)
        assert bool(norms) == ("frozen" not in how)
    again, _ = _model(1)
    restore(tuning.attach(again, seed=99), kept)  # other adapter draws, all overwritten
    with torch.no_grad():
        torch.testing.assert_close(again.eval()(batch).logits, model.eval()(batch).logits)


def test_restore_refuses_a_state_of_another_model(store) -> None:
    model, name = _model(1)
    model = _tuning(store, f"{name}:top=1").attach(model)
    state = trained_state(model, model.state_dict())
    state["top_layers.0.layers.0.unknown"] = torch.zeros(1)
    with pytest.raises(ConfigError, match="does not fit the model"):
        restore(model, state)


def test_a_set_extracted_in_half_precision_is_refused(store) -> None:
    """The top layers continue the encoder in float32: a set extracted in fp16 (a GPU's
    default) is refused with the command that makes it again in fp32."""
    from ser.finetune.tuning import load_tuning

    attrs = dict(store.info(f"{HUBERT}.L1").attrs)
    exact = load_tuning([f"{HUBERT}.L1:top=1"], {f"{HUBERT}.L1": (f"{HUBERT}.L1", attrs)})
    assert exact is not None and exact.notes == ()
    half = {**attrs, "precision": "fp16"}
    with pytest.raises(ConfigError, match=r"was extracted in fp16.*--precision fp32"):
        load_tuning([f"{HUBERT}.L1:top=1"], {f"{HUBERT}.L1": (f"{HUBERT}.L1", half)})
