"""What a run predicts: its heads (`ser.heads.base.Head`), the built-in ones registered,
and their metrics."""

from importlib import import_module

from ser.heads.registry import register

# The further heads, a module each ending in its `HEAD`: a new head is its file and its
# name here (docs/dev/add-head.md). The category and the attributes are `Targets`' own.
HEAD_MODULES = ("sentiment", "multilabel", "sentiment_score", "emotion_intensities")
for _name in HEAD_MODULES:
    register(import_module(f"ser.heads.{_name}").HEAD)
