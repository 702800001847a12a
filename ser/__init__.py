"""ser: multimodal speech emotion recognition on IEMOCAP, MELD, MSP-Podcast, CREMA-D,
RAVDESS or any corpus given as a manifest.

Stage 1 (``ser extract``) runs pretrained encoders once into a feature store; stage 2
(``ser train``) trains fusion models on the cached features in minutes.
"""

__version__ = "0.1.0"


from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeAlias, TypeVar, Union

if TYPE_CHECKING:  # what mypy sees; at run time `__getattr__` imports them when first used
    from ser.api import FeatureDataset, folds, load, metrics, open_store, train

__all__ = [
    "FeatureDataset",
    "Json",
    "Registry",
    "__version__",
    "folds",
    "load",
    "metrics",
    "open_store",
    "train",
]
#: The Python API (docs/python.md), imported from `ser.api` when first used, so that
#: `import ser` and the command line's start load no torch. `ser.train` is the package
#: ser/train/, callable: its call is `ser.api.train`.
_API = ("FeatureDataset", "folds", "load", "metrics", "open_store", "train")


def __getattr__(name: str) -> Any:
    if name in _API:
        import ser.api  # which imports the package ser.train too

        return globals()[name] if name in globals() else getattr(ser.api, name)
    raise AttributeError(f"module 'ser' has no attribute {name!r}")


# Any JSON value (a run record's family options, an unknown key's value, a head's
# metrics): the lowest layer holds it, for heads and run records alike.
Json: TypeAlias = Union[str, int, float, bool, list["Json"], dict[str, "Json"], None]  # noqa: UP007


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


class Registry(dict[str, T], Generic[T]):
    """Things registered once each by their `name`, in the order they came: corpus kinds,
    extractor kinds, model families, heads. A name taken twice is a bug in whichever
    module registered it second, so it is a ValueError, not a user's error."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def add(self, item: T) -> T:
        """Register `item` under its name (the one line a module ends with)."""
        known = self.get(item.name)
        if known is not None and known is not item:
            raise ValueError(f"{self.what} {item.name!r} is registered already")
        self[item.name] = item
        return item
