"""Reaching the MLflow store a run is logged to (`ser train --track mlflow`,
`ser.track.tracking`): a client of its tracking URI, and MLflow's failures as one line
naming the URI, or the store's file, and what to do.

MLflow retries a request 7 times over about four minutes by default: a server that does
not answer is said within seconds here (`HTTP_CHECK`, `HTTP_LOG`), unless the user set
MLflow's variables, which are kept. A folder store is checked before MLflow writes in it
(a file, a folder that cannot be made), and when MLflow cannot read it, the damaged
``meta.yaml`` is found and named. The variables are set only while ser calls MLflow.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ser.errors import ConfigError, SerError

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

RETRIES = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
# Before anything trains: a refusal at once, a host that drops packets in 10 s.
HTTP_CHECK = {RETRIES: "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
# While a run is logged: a busy server is given time, one gone is said in seconds.
HTTP_LOG = {
    RETRIES: "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
# MLflow 3 opens a folder store only so (mlflow-skinny has no database store).
FOLDER = {"MLFLOW_ALLOW_FILE_STORE": "true"}
# The keys MLflow's folder store cannot read an experiment or a run without.
EXPERIMENT_KEYS: tuple[str, ...] = ("experiment_id", "name", "artifact_location", "lifecycle_stage")
RUN_KEYS: tuple[str, ...] = ("run_id", "experiment_id", "user_id", "start_time", "end_time")
KEPT = "the run's record is kept"


def folder_of(uri: str) -> Path | None:
    """The folder of a folder store's URI (a path or ``file:``); None: a server's."""
    if uri.startswith("file:"):
        from urllib.parse import urlparse
        from urllib.request import url2pathname

        return Path(url2pathname(urlparse(uri).path))
    return None if "://" in uri else Path(uri)


def check_folder(uri: str) -> None:
    """Refuse a folder store that is a file or cannot be made (`ConfigError`); made if
    missing, as MLflow would."""
    folder = folder_of(uri)
    if folder is None:
        return
    mend = "give --track-uri a folder you can write to, or a server (http://host:5000)"
    for above in (folder, *folder.parents):
        if above.exists() and not above.is_dir():
            raise ConfigError(f"MLflow's store {folder}: {above} is a file, not a folder: {mend}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"MLflow's store {folder} cannot be created ({e.strerror or e}): {mend}"
        ) from None


@contextlib.contextmanager
def client(uri: str, checking: bool = False) -> Iterator[MlflowClient]:
    """A client of `uri`, MLflow's variables set for the block (`checking`: before the
    run trains); what MLflow raises in it as a `ConfigError` naming the URI or file."""
    from mlflow.tracking import MlflowClient

    folder = folder_of(uri)
    settings = FOLDER if folder is not None else HTTP_CHECK if checking else HTTP_LOG
    with _environment(settings):
        tries = int(os.environ.get(RETRIES, "7")) + 1
        try:
            yield MlflowClient(tracking_uri=uri)
        except SerError:
            raise
        except Exception as e:
            said = _error(e, uri, folder, tries, checking)
            if said is e:
                raise
            raise said from e


@contextlib.contextmanager
def _environment(settings: Mapping[str, str]) -> Iterator[None]:
    """`settings` in os.environ for the block, each where the user has not set it."""
    added = {k: v for k, v in settings.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _error(e: Exception, uri: str, folder: Path | None, tries: int, checking: bool) -> Exception:
    """What to say of `e`, raised by MLflow at `uri`: `e` itself where it is none of
    MLflow's, the store's or the network's (a fault of ser's is not reworded)."""
    import yaml
    from mlflow.exceptions import MlflowException

    after = (
        "" if checking else f"; {KEPT}: once that is mended, the same command logs what is missing"
    )
    if folder is not None:
        unread = MlflowException | ValueError | KeyError | TypeError | yaml.YAMLError
        if isinstance(e, unread) and (damaged := damaged_meta(folder)) is not None:
            return ConfigError(f"MLflow's store {folder}: {damaged}{after}")
        if isinstance(e, OSError):
            return ConfigError(f"MLflow's store {folder}: {e}{after}")
    if (reason := _unreachable(e)) is not None:
        if checking:
            return ConfigError(
                f"--track-uri {uri}: no MLflow server answers there ({reason}, {tries} "
                "tries): start it (mlflow server --host HOST --port PORT) or give another "
                "--track-uri"
            )
        return ConfigError(
            f"MLflow at {uri} stopped answering ({reason}, {tries} tries); {KEPT}: once "
            "the server answers, the same command logs what is missing"
        )
    if isinstance(e, MlflowException | OSError):
        text = str(e).strip()
        first = text.splitlines()[0] if text else type(e).__name__
        return ConfigError(f"MLflow at {uri}: {first}{after}")
    return e


def _unreachable(e: BaseException) -> str | None:
    """Why a server did not answer (``Connection refused``, ``timed out``), where `e`
    comes of a failed connection; None: it answered."""
    import requests

    cause: BaseException | None = e
    while cause is not None:
        if isinstance(cause, requests.ConnectionError | requests.Timeout):
            break
        cause = cause.__cause__ or cause.__context__
    text = str(e if cause is None else cause)
    if cause is None and not re.search(r"Failed to establish|Connection refused|timed out", text):
        return None
    if "timed out" in text or isinstance(cause, requests.Timeout):
        return "timed out"
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    return found.group(1).strip() if found else "no answer"


def damaged_meta(store: Path) -> str | None:
    """The first ``meta.yaml`` of an experiment or a run in the folder store that MLflow
    cannot read, what is wrong with it and the mend; None: all read."""
    kinds = (("experiment", "*/meta.yaml", EXPERIMENT_KEYS), ("run", "*/*/meta.yaml", RUN_KEYS))
    for what, pattern, keys in kinds:
        for path in sorted(store.glob(pattern)):
            if (problem := _meta_problem(path, keys)) is None:
                continue
            return (
                f"{path} {problem}: restore it, or move the {what}'s folder {path.parent} "
                "out of the store (what ser logged there is then logged again)"
            )
    return None


def _meta_problem(path: Path, keys: tuple[str, ...]) -> str | None:
    import yaml

    try:
        meta = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        return "is not UTF-8 text"
    except yaml.YAMLError:
        return "is not YAML"
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if not isinstance(meta, dict):
        return "is not a YAML mapping"
    missing = [k for k in keys if k not in meta]
    return f"lacks {', '.join(missing)}" if missing else None
