"""Progress of tasks training on dask workers, told to the sweep that submitted them.

A worker's task publishes `ser train`'s epoch lines (`EpochLines`: the first and last
epoch of each fold or stage, else at most one per `INTERVAL` s, with seed, epoch, loss,
elapsed and ETA) and `Heartbeat` lines within long epochs, as events of the topic `TOPIC`
(`distributed.Worker.log_event`); the sweep subscribes to the topic
(`Client.subscribe_topic`) and prints each line under the cells it names. Events go
through the scheduler, so this works for `--scheduler` too, with nothing written to disk.

>>> sent = []
>>> lines = Published(["abc"], sent.append, interval=0)
>>> lines.fold_start(0, "session5", 2)
>>> lines.epoch(1, 2, 1.25, float("nan"))
>>> sent[0]["keys"], sent[0]["text"].split("  ")[:2]
(['abc'], ['seed 0 session5: epoch 1/2', 'loss 1.250'])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ser.runtime.plain_progress import INTERVAL, EpochLines
from ser.train.progress import Heartbeat, Progress, fold_label

TOPIC = "ser-sweep-progress"
Message = dict[str, Any]  # {"keys": [cell key, ...], "text": line}: msgpack-able


class Published(Progress):
    """`ser train`'s plain progress lines of a task's cells, each sent as a `Message`."""

    shows_epochs = True  # a Heartbeat wrapping it counts epoch lines as lines

    def __init__(
        self, keys: Sequence[str], send: Callable[[Message], None], interval: float = INTERVAL
    ) -> None:
        self.keys, self.send = list(keys), send
        self.lines = EpochLines(self._say, interval=interval)

    def _say(self, text: str) -> None:
        self.send({"keys": self.keys, "text": text})

    def fold_start(self, seed: int, fold: str, epochs: int) -> None:
        self.lines.start(fold_label(seed, fold))

    def stage(self, n: int, total: int, name: str) -> None:
        self._say(f"stage {n} of {total}: {name}")

    def epoch(self, epoch: int, epochs: int, train_loss: float, val_ua: float) -> None:
        self.lines.epoch(epoch, epochs, train_loss, val_ua)

    def heartbeat(self, text: str) -> None:
        self._say(text)

    def fold_end(self, seed: int, fold: str, entry: dict[str, Any]) -> None:
        self.lines.end()


def worker_progress(keys: Sequence[str]) -> Progress | None:
    """Progress that publishes to `TOPIC` when called inside a dask task, else None."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):  # not on a worker: the caller shows its own
        return None
    return Heartbeat(Published(keys, lambda message: worker.log_event(TOPIC, message)))


def is_message(value: Any) -> bool:
    """Whether an event's payload is a `Message` (a topic is anyone's to log to)."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("text"), str)
        and isinstance(value.get("keys"), list | tuple)  # msgpack hands back tuples
    )
