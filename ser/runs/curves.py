"""A fold's training curves as its entry keeps them (`FoldEntry.curves`, a `Stage`'s;
written from `ser.train.engine.tracker.Curves`): per epoch, the training loss and the
validation loss, UA and WA; the mean CCC where attributes trained (`val_ccc`), the
further heads' scores by name where they trained (`val_heads`). NaN: no validation side.

It is also a read-only mapping of its JSON (``curves["val_ua"]``), the keys as written.

>>> c = Curves.from_json({"epoch": [1, 2], "train_loss": [1.0, 0.5], "val_ua": [50.0, 60.0]})
>>> c.epoch, c["val_ua"], list(c)
((1, 2), [50.0, 60.0], ['epoch', 'train_loss', 'val_ua'])
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ser.runs.codec import Json, decode, encode

Series = tuple[float | None, ...]  # one value per epoch


@dataclass(frozen=True, kw_only=True)
class Curves(Mapping[str, Any]):
    """The per-epoch series (None: not recorded)."""

    epoch: tuple[int, ...] | None = None
    train_loss: Series | None = None
    val_loss: Series | None = None
    val_ua: Series | None = None
    val_wa: Series | None = None
    val_ccc: Series | None = None
    val_heads: Mapping[str, Series] | None = None
    extra: Mapping[str, Json] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: object, where: str = "curves") -> Curves:
        return decode(cls, obj or {}, where)

    def to_json(self) -> dict[str, Json]:
        return {k: encode(v) for k, v in self._flat().items()}

    def _flat(self) -> dict[str, Any]:
        named = {k: getattr(self, k) for k in _NAMES}
        return {**{k: v for k, v in named.items() if v is not None}, **self.extra}

    # The mapping's values are Any: a series (a list) or the heads' series by name.
    def __getitem__(self, key: str) -> Any:
        return encode(self._flat()[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._flat())

    def __len__(self) -> int:
        return len(self._flat())


_NAMES = ("epoch", "train_loss", "val_loss", "val_ua", "val_wa", "val_ccc", "val_heads")
