"""The trainer (`ser.train.recipe.train`: what `ser train` runs; docs/dev/train.md).

The package is callable: ``ser.train(store=..., features=..., ...)`` is the Python API's
`ser.api.train` (docs/python.md), imported when first called, which the package's name
would hide otherwise.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ser.api.training import Run
    from ser.track.progress import Progress


class _Callable(types.ModuleType):
    def __call__(self, progress: Progress | None = None, **options: Any) -> Run:
        from ser.api.training import train

        return train(progress, **options)


sys.modules[__name__].__class__ = _Callable
