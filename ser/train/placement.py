"""Where each input's rows live under a memory budget (`--memory-budget`), decided before
the run reads them: on the device when they fit, in host memory (pinned) on a GPU when
they fit there, else streamed from the store a chunk at a time (`ser.train.stream`).

The budget holds the rows and what training gathers from them: every input's largest
batch (in fp32; of an input the model averages, with every utterance's mean) first, then
the inputs in memory, smallest first, then each streamed input's chunk cache (at least
the chunks of a window of the block shuffle, `ser.train.batches`, and of the next one
read ahead, never more than the set's chunks: `least_cache`; a layered input's chunk is
one of each of its layer sets, which share its cache). A run that cannot fit even
streamed is refused with the figures, and where a set's chunks are what it lacks room
for, with the `ser store rechunk` that makes them smaller. Where rows live changes no
number, unless an input streams: then its training sides draw their batches window by
window (the same batches for the same seed on any machine, whatever the budget or the
set's chunks), not over the whole side. An input's
views (`--views`) and a cross-corpus run's test-store set are placed with it (`copies`):
their rows held with its own, or each set streamed beside it through its share of the
input's cache (`shares`). The default follows what is free now (half the device's free
memory on a GPU, half the available RAM on a CPU) and only places rows in memory
(`held`): an input streams only under a `--memory-budget` it does not fit, and which
inputs streamed is in the run's record (`config["streamed"]`), compared on resume as
every result-changing option is.

>>> decide({"a": 10, "b": 300}, {"a": 1, "b": 2}, {"b": 40}, budget=100)
({'a': 'device', 'b': 'stream'}, {'b': 50})
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ser.cache import FeatureStore
from ser.cache.store import chunk_bytes_for
from ser.errors import ConfigError
from ser.runtime.memory import available_memory, device_free_memory, memory_budget
from ser.runtime.units import human_bytes, parse_size
from ser.train.features import ResolvedFeature

#: The default budget's share of what is free now.
SHARE = 0.5
#: A set's blocks (`FeatureStore.block_rows`) a streamed training side's window takes
#: (`ser.train.batches`): a fixed count, so that its batches are the same for the same
#: seed whatever the budget. A streamed input's chunk cache holds at least the chunks of
#: a window, of the next one and one an utterance spills into (`least_cache`).
WINDOW_BLOCKS = 4
#: Input name -> the other sets its table holds: (store, that set as the input).
Copies = Mapping[str, Sequence[tuple[FeatureStore, ResolvedFeature]]]


@dataclass(frozen=True)
class Placement:
    """The budget (bytes, and where it came from), each input's place ("device": in the
    training device's memory; "host": pinned host memory beside a GPU; "stream": read
    from the store), the bytes its rows take and each streamed input's cache."""

    budget: int
    source: str
    places: dict[str, str]
    needs: dict[str, int]
    cache: dict[str, int]
    device: str = "cpu"
    asked: bool = False  # the budget is --memory-budget's (else the default, `held`)
    # A layered input's stored sets, whose chunks share the input's cache.
    layer_sets: Mapping[str, int] = field(default_factory=dict)
    # The utterance means held of each input the model averages, wherever its rows are.
    means: Mapping[str, int] = field(default_factory=dict)

    @property
    def streamed(self) -> set[str]:
        return {name for name, place in self.places.items() if place == "stream"}

    def describe(self) -> str:
        """e.g. "memory budget 366.2 MiB (--memory-budget 384MB): hubert 1.9 GiB streamed
        (cache 320.0 MiB), mpnet 12.0 MiB in memory"."""
        where = {"device": "in memory" if self.device == "cpu" else f"on {self.device}"}
        where |= {"host": "in pinned host memory", "stream": "streamed"}
        parts = []
        for name, place in self.places.items():
            parts.append(
                f"{name} {human_bytes(self.needs[name])} {where[place]}{self._cache(name)}"
            )
        said = f"memory budget {human_bytes(self.budget)} ({self.source}): " + ", ".join(parts)
        over = not self.asked and sum(self.needs.values()) > self.budget
        return said + (
            "; over the budget, held all the same (--memory-budget SIZE streams)" if over else ""
        )

    def _cache(self, name: str) -> str:
        """The words " (cache 320.0 MiB)" of a streamed input ("" of another); a layered
        input's say the sets that share it, an averaged input's the means it holds."""
        if name not in self.cache:
            return ""
        sets = self.layer_sets.get(name, 0)
        shared = f" shared by its {sets} layer sets" if sets else ""
        means = f", means {human_bytes(self.means[name])}" if self.means.get(name) else ""
        return f" (cache {human_bytes(self.cache[name])}{shared}{means})"


def default_budget(device: torch.device) -> tuple[int, str]:
    """`SHARE` of the device's free memory (a GPU) or of the available RAM, and the words
    that say so."""
    if device.type == "cuda":
        free = device_free_memory(device.index)
        return int(free * SHARE), f"half of {human_bytes(free)} free on {device}"
    free = available_memory()
    return int(free * SHARE), f"half of {human_bytes(free)} available RAM"


def asked_budget(text: str) -> int:
    """`--memory-budget`'s bytes (`ConfigError` naming the option for a bad size)."""
    try:
        return parse_size(text)
    except ValueError as error:
        raise ConfigError(f"--memory-budget {error}") from None


def place_inputs(
    store: FeatureStore,
    features: Sequence[ResolvedFeature],
    device: torch.device,
    asked: str | None,
    batch_size: int,
    sequences: Collection[str] | None = None,
    copies: Copies | None = None,
    members: int = 1,
    host_asked: str | None = None,
) -> Placement:
    """Each input's place under the asked (or default) budget; `ConfigError` with the
    figures when even streaming cannot fit. `sequences`: the inputs the model gathers as
    sequences (None: every frame or token set); the others' batches are their means.
    `copies`: the other sets an input's table holds beside its own (its views, a test
    store's set), placed with it: held with it, or each streamed through a cache of its
    own. `members`: the members a step trains at once (`--members-at-once`), each
    gathering its own batch and, where an input streams, reading its own seed's window
    through the input's cache. `host_asked`: `--host-memory` (`host_budget`)."""
    if host_asked is not None and not asked:
        raise ConfigError(
            "--host-memory bounds what --memory-budget's device share leaves out: give both"
        )
    budget, source = (
        (asked_budget(asked), f"--memory-budget {asked}") if asked else default_budget(device)
    )
    every = {f.name: [(store, f), *(copies or {}).get(f.name, ())] for f in features}
    needs = {name: sum(input_bytes(s, f) for s, f in sets) for name, sets in every.items()}
    batches, means = fixed_costs(every, batch_size, sequences, members)
    if not asked:
        places = held(needs, batches, budget, device)
        return Placement(budget, source, places, needs, {}, str(device), means=means)
    least = {  # the chunks of each set an input reads, for each member's windows
        f.name: members * sum(least_cache(s, c) for s, c in every[f.name]) for f in features
    }
    host = host_budget(device, host_asked)
    helps = {f.name: rechunk_advice(s, c) for f in features for s, c in every[f.name][:1]}
    try:
        places, cache = decide(needs, least, batches, budget, host, means, helps)
    except ConfigError as refused:
        if members == 1:
            raise
        raise ConfigError(
            f"{refused}, or lower --members-at-once {members}: each member stacked gathers "
            "its own batch and reads its own window of a streamed input"
        ) from None
    layered = {f.name: len(f.sets) for f in features if f.sets}
    return Placement(budget, source, places, needs, cache, str(device), True, layered, means)


def fixed_costs(
    every: Mapping[str, Sequence[tuple[FeatureStore, ResolvedFeature]]],
    batch_size: int,
    sequences: Collection[str] | None,
    members: int,
) -> tuple[dict[str, int], dict[str, int]]:
    """What the budget holds first, wherever the rows live: each input's largest batch
    (of its own set or a copy's; `members` of them), and the means held of each input the
    model averages (not in `sequences`)."""
    batches = {
        name: members
        * max(
            batch_bytes(s, f, batch_size, sequences is None or name in sequences) for s, f in sets
        )
        for name, sets in every.items()
    }
    means = {
        name: sum(means_bytes(s, f) for s, f in sets)
        for name, sets in every.items()
        if sequences is not None and name not in sequences
    }
    return batches, means


def host_budget(device: torch.device, asked: str | None) -> int | None:
    """The pinned host memory beside a GPU that holds the inputs the device's budget
    does not (None on the CPU: the budget is host memory): `--host-memory`, else `SHARE`
    of the machine's memory. Never what is free now: whether an input streams changes
    its batches, and a busy machine must not change what a run computes."""
    if device.type != "cuda":
        if asked is not None:
            raise ConfigError(
                f"--host-memory is for a GPU run; on {device} --memory-budget is host memory"
            )
        return None
    if asked is None:
        return int(memory_budget() * SHARE)
    try:
        return parse_size(asked)
    except ValueError as error:
        raise ConfigError(f"--host-memory {error}") from None


def held(
    needs: Mapping[str, int], batches: Mapping[str, int], budget: int, device: torch.device
) -> dict[str, str]:
    """The default budget's places: every input held in memory (on a GPU, those over the
    budget in pinned host memory), never streamed nor refused. The default follows what is
    free now, and a streamed input draws other batches, so streaming by default would make
    a run's numbers depend on what else the machine is doing: it streams when asked."""
    if device.type == "cpu":
        return {name: "device" for name in needs}
    room = max(budget, sum(batches.values()))
    places, _ = decide(needs, {}, batches, room, host=sum(needs.values()))
    return places


def decide(
    needs: Mapping[str, int],
    least: Mapping[str, int],
    batches: Mapping[str, int],
    budget: int,
    host: int | None = None,
    means: Mapping[str, int] | None = None,
    helps: Mapping[str, str] | None = None,
) -> tuple[dict[str, str], dict[str, int]]:
    """(input -> place, streamed input -> its cache's bytes) for inputs whose rows take
    `needs`, their largest batch `batches` and a streamed cache at least `least` bytes
    (`least_cache`); `host`: pinned host memory beside a GPU (None: on the CPU); `means`:
    the utterance means held of the inputs a model averages; `helps`: the command that
    makes an input's chunks smaller, said when its cache is refused ("": none)."""
    means = {name: size for name, size in (means or {}).items() if size}
    left = budget - sum(batches.values()) - sum(means.values())
    if left < 0:
        raise ConfigError(_refusal(budget, batches, {}, means=means))
    places: dict[str, str] = {}
    host_left = host or 0
    for name in sorted(needs, key=lambda n: (needs[n], n)):
        if needs[name] <= left:
            places[name], left = "device", left - needs[name]
        elif needs[name] <= host_left:
            places[name], host_left = "host", host_left - needs[name]
        else:  # (`held` gives no chunks: its host holds every input)
            places[name] = "stream"
    streamed = [name for name in needs if places[name] == "stream"]
    pool = host_left if host is not None else left  # the chunk caches are host memory
    caches = {name: least[name] for name in streamed}
    if sum(caches.values()) > pool:
        kept = {n: needs[n] for n in needs if places[n] == "device" and host is None}
        said = [h for n in streamed if (h := (helps or {}).get(n, ""))]
        raise ConfigError(_refusal(budget, batches, caches, kept, means, said))
    share = pool // max(len(streamed), 1)
    return {n: places[n] for n in needs}, {
        n: max(caches[n], min(share, needs[n])) for n in streamed
    }


def shares(total: int, chunks: Sequence[int]) -> list[int]:
    """A streamed input's cache (`total` bytes) split among its streams (its own set's,
    then each copy's) by their least caches (`least_cache`): each keeps at least its own,
    as `decide` held that much of each.

    >>> shares(90, [10, 20])
    [30, 60]
    """
    whole = max(sum(chunks), 1)
    return [total * chunk // whole for chunk in chunks]


def _refusal(
    budget: int,
    batches: Mapping[str, int],
    caches: Mapping[str, int],
    kept: Mapping[str, int] | None = None,
    means: Mapping[str, int] | None = None,
    helps: Sequence[str] = (),
) -> str:
    """Why `budget` cannot hold the run: its batches, the means it holds of the inputs it
    averages, the streamed inputs' least caches and the rows of the inputs it keeps in
    memory beside them (`kept`), summed; `helps`: the commands that make the caches
    smaller."""

    def listed(sizes: Mapping[str, int]) -> str:
        return ", ".join(f"{n} {human_bytes(b)}" for n, b in sizes.items())

    kept, means = kept or {}, means or {}
    need = sum(batches.values()) + sum(caches.values()) + sum(kept.values())
    need += sum(means.values())
    return (
        f"the memory budget ({human_bytes(budget)}) cannot hold this run even streamed: "
        f"its largest batches take {listed(batches)}"
        + (f", the means of the inputs it averages {listed(means)}" if means else "")
        + (f", its streamed inputs' chunk caches at least {listed(caches)}" if caches else "")
        + (f", the rows it keeps in memory {listed(kept)}" if kept else "")
        + f" ({human_bytes(need)} in all); raise --memory-budget or lower --batch-size"
        + "".join(f"; or {h}" for h in helps)
    )


def averaged(feature: ResolvedFeature) -> bool:
    """Whether a model of utterance vectors averages the input's rows: a frame or token
    set, or the layer sets of one (an utterance-level set's rows are its vectors)."""
    return feature.level in ("frame", "token")


def input_bytes(store: FeatureStore, feature: ResolvedFeature) -> int:
    """The bytes of every row of the input's stored sets (each utterance of the store's,
    kept or not: an upper bound on the run's)."""
    total = 0
    for name in feature.stored:
        info = store.info(name)
        total += int(info.rows) * int(info.dim) * np.dtype(str(info.dtype)).itemsize
    return total


def chunk_bytes(store: FeatureStore, feature: ResolvedFeature) -> int:
    """The bytes of one chunk of the input's set, the unit a streamed read takes (a
    layered input's: a chunk of each layer set, read by the same rows)."""
    total = 0
    for name in feature.stored:
        info = store.info(name)
        total += store.chunk_rows(name) * int(info.dim) * np.dtype(str(info.dtype)).itemsize
    return total


def least_cache(store: FeatureStore, feature: ResolvedFeature) -> int:
    """The bytes a streamed input's chunk cache holds at least: the chunks of a window of
    `WINDOW_BLOCKS` blocks, of the next window and one an utterance spills into, never
    more than the set's chunks (a set of one chunk: that chunk); a layered input's, of
    each of its layer sets."""
    total = 0
    for name in feature.stored:
        info = store.info(name)
        rows, chunk = int(info.rows), max(1, store.chunk_rows(name))
        span = spanned(store.block_rows(name), chunk)
        count = min(max(1, -(-rows // chunk)), 2 * WINDOW_BLOCKS * span + 1)
        total += count * chunk * int(info.dim) * np.dtype(str(info.dtype)).itemsize
    return total


def spanned(block: int, chunk: int) -> int:
    """The most chunks of `chunk` rows a block of `block` rows (one starting at a
    multiple of `block`) lies in.

    >>> [spanned(b, c) for b, c in ((8, 8), (8, 2), (2, 8), (8, 3), (3, 8))]
    [1, 4, 1, 4, 2]
    """
    if block % chunk == 0:
        return block // chunk
    if chunk % block == 0:
        return 1
    return block // chunk + 2


def rechunk_advice(store: FeatureStore, feature: ResolvedFeature) -> str:
    """The `ser store rechunk` that writes the input's sets in the chunks extraction
    writes now, where theirs are larger ("": none are): a set written in one chunk
    streams only so."""
    commands = []
    for name in feature.stored:
        info = store.info(name)
        row = int(info.dim) * np.dtype(str(info.dtype)).itemsize
        wanted = max(chunk_bytes_for(int(info.rows) * row), row)
        if store.chunk_rows(name) * row > wanted:
            size = human_bytes(wanted).replace(" ", "")
            commands.append(f"ser store rechunk {store.path} {name} --chunk-size {size}")
    if not commands:
        return ""
    return f"write {feature.name} in smaller chunks, of which its cache holds fewer bytes: " + (
        "; ".join(commands)
    )


def means_bytes(store: FeatureStore, feature: ResolvedFeature) -> int:
    """The fp32 means of every utterance a model that averages a frame or token input
    holds (0 of an utterance-level input: its rows are its vectors).

    A streamed input's means are read in a first pass and held: at MSP-Podcast's 150,000
    utterances, 460 MB of HuBERT-base's, 6 GB of its thirteen layers'."""
    if not averaged(feature):
        return 0
    info = store.info(feature.stored[0])
    return len(store.manifest) * int(info.dim) * len(feature.stored) * 4


def batch_bytes(
    store: FeatureStore, feature: ResolvedFeature, batch_size: int, sequence: bool = True
) -> int:
    """The bytes of the input's largest batch as training gathers it: `batch_size` of its
    longest utterance's rows, stored and in fp32 (not a `sequence`: of its means)."""
    info = store.info(feature.stored[0])
    width = int(info.dim) * len(feature.stored) * (np.dtype(str(info.dtype)).itemsize + 4)
    if feature.level == "utterance" or not sequence:
        return batch_size * width
    longest = int(np.diff(store.offsets(feature.stored[0])).max(initial=1))
    return batch_size * longest * width
