"""A store's receipt read back (`ser.cache.receipts` writes it): what the last extraction
left the store holding. Apart from `receipts.py` so that the store's own checks
(`health.py`), below `FeatureStore`, can read which sets it should hold.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ser.cache.backend import check_name
from ser.errors import StoreError


def receipt_path(store: Path) -> Path:
    return store.with_name(store.name + ".receipt.json")


def read_receipt(store: Path) -> dict[str, Any] | None:
    """The receipt as written; None without a readable one."""
    try:
        found = json.loads(receipt_path(store).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def receipt_backup(store: Path) -> dict[str, Any] | None:
    """The receipt's copy of the store's attributes (``store``) and of its complete sets'
    (``sets``, by name); None without a readable one."""
    backup = (read_receipt(store) or {}).get("backup")
    if not isinstance(backup, dict):
        return None
    ok = isinstance(backup.get("sets"), dict) and isinstance(backup.get("store"), dict)
    if ok:
        _check_names(store, backup["sets"])
    return backup if ok else None


def _check_names(store: Path, sets: dict[str, Any]) -> None:
    """StoreError naming the receipt when it lists a set under a name no store can hold
    (`../x`): it was not written so, and what repairs the store from it would pass the
    name on to `ser extract --name`, whose refusal speaks of an option never given."""
    for name in sets:
        try:
            check_name(name)
        except StoreError:
            raise StoreError(
                f"{receipt_path(store)}: damaged receipt: it lists a feature set named "
                f"{name!r}, which no store can hold; take that set out of its 'backup' or "
                f"delete the receipt (the next `ser extract` into {store} writes it again)"
            ) from None


def receipt_sets(store: Path) -> dict[str, dict[str, Any]]:
    """The complete sets the receipt records the store holding, with their attributes
    (empty without a receipt)."""
    return dict((receipt_backup(store) or {}).get("sets", {}))
