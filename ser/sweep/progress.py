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

from collections.abc import Sequence

from ser.track.progress import Heartbeat, Progress, Published

TOPIC = "ser-sweep-progress"


def worker_progress(keys: Sequence[str]) -> Progress | None:
    """Progress that publishes to `TOPIC` when called inside a dask task, else None."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):  # not on a worker: the caller shows its own
        return None
    return Heartbeat(Published(keys, lambda message: worker.log_event(TOPIC, message)))


def is_message(value: object) -> bool:
    """Whether an event's payload is a `Message` (a topic is anyone's to log to)."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("text"), str)
        and isinstance(value.get("keys"), list | tuple)  # msgpack hands back tuples
    )
