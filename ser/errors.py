"""Errors for bad user input.

Library code raises these; the CLI turns them into one clear message and an exit code,
never a traceback. Anything else escaping to the CLI is a bug in ser. `Interrupted`, the
one that is no `SerError`, is Ctrl-C, said as one line as well.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable, Collection, Iterable
from pathlib import Path


class SerError(Exception):
    """A problem with what the user asked for or gave us (exit code 2 by default)."""

    exit_code = 2


class CorpusError(SerError):
    """The corpus root (or manifest) is not in its kind's layout, or cannot be read."""


class StoreError(SerError):
    """The feature store is missing, locked, malformed or holds something else."""


class FingerprintMismatch(StoreError):
    """A feature set of that name exists with other provenance (weights, layer, settings)."""


class StoreLocked(StoreError):
    """Another process holds the store's write lock."""


class ConfigError(SerError, ValueError):
    """Options that cannot work together (e.g. a fusion the features' shapes don't allow),
    or a value an option cannot take: a `ValueError`, as Python's own calls raise for one."""


def chosen(
    names: Iterable[str], known: Collection[str], refusal: Callable[[list[str]], str]
) -> list[str]:
    """`names` without repeats, in their order, each one of `known`; `ConfigError` where
    one is not (or none is named), its message `refusal` of the unknown ones."""
    picked = list(dict.fromkeys(names))
    unknown = [name for name in picked if name not in known]
    if unknown or not picked:
        raise ConfigError(refusal(unknown))
    return picked


class ModelError(ConfigError):
    """A pretrained model that cannot serve its extractor (e.g. weights missing from its
    checkpoint, which would be initialised at random)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C while runs trained; `kept`: what each run's folder keeps, said, for the one
    line that says how to resume (a KeyboardInterrupt still: whatever stops on Ctrl-C
    stops on it)."""

    def __init__(self, kept: list[str]) -> None:
        super().__init__()
        self.kept = kept


class WorkerLost(SerError):
    """A process of a local pool stopped before its work was done (killed: out of memory,
    a signal); what finished before it is kept."""


class TrainingDiverged(SerError):
    """A member's weights became NaN or infinite: what it would score is no model's."""


class ReportError(SerError):
    """A run record is missing, unreadable or lacks what a report needs."""


class CheckpointError(SerError):
    """A run directory has no (usable) checkpoints."""


class RunNotFound(CheckpointError, FileNotFoundError):
    """A run (or model) folder that does not exist: a `FileNotFoundError` too, as Python's
    own calls raise for a path that is not there."""


# The errors of a path (not of the disk, not of the data), and what the system's words
# leave unsaid.
_PATH_HINTS = {
    errno.EACCES: "",
    errno.EPERM: "",
    errno.EROFS: "",
    errno.EEXIST: "",
    errno.ENOTDIR: ": a part of the path is a file, not a folder",
    errno.EISDIR: ": a folder where a file goes",
}


class RunLocked(SerError):
    """Another process is training the run (its folder's lock is held)."""


class PathError(SerError):
    """A path that cannot serve as asked: a file where a folder must be (or on the way to
    it), a folder where a file goes, a folder this process may not write in."""

    @classmethod
    def of(cls, error: BaseException) -> PathError | None:
        """`error` as one line naming its path and what is wrong with it; None for an
        error that names no path or is not about one (a full disk: `DiskFullError`)."""
        if not isinstance(error, OSError) or error.errno not in _PATH_HINTS:
            return None
        if error.filename is None:
            return None
        where = str(error.filename)
        if error.filename2 is not None:
            where += f" -> {error.filename2}"
        return cls(f"{where}: {os.strerror(error.errno)}{_PATH_HINTS[error.errno]}")


# What a re-run of a command that resumes does (extract, train, sweep).
RESUMES = "it resumes where it stopped, keeping what was written before"
# numpy's error for a short write (`ndarray.tofile`, `np.save`), which carries no errno.
_SHORT_WRITE = re.compile(r"^\d+ requested and \d+ written$")
# An OS error told only in an error's text: a Rust library's (safetensors': its own
# type, "I/O error: No space left on device (os error 28)" or, debug-printed,
# ``IoError(Os { code: 28, kind: StorageFull, ... })``) or `shutil.copytree`'s (an
# OSError without errno, listing each file's ``[Errno 28] No space left ...``).
_TOLD_OS_ERROR = re.compile(r"\(os error (\d+)\)|\bOs \{ code: (\d+),|\[Errno (\d+)\]")


class DiskFullError(SerError):
    """The disk (or the user's quota) filled up while ser wrote: nothing written before
    is lost, and the same command run again once there is room goes on from there."""

    @classmethod
    def of(
        cls, error: BaseException, path: str | Path | None, what: str, again: str = RESUMES
    ) -> DiskFullError | None:
        """`error` as a full disk writing `what` to `path` (None: unknown); None when it
        is something else."""
        if not isinstance(error, OSError) or error.errno is None:
            told = _TOLD_OS_ERROR.search(str(error))
            code = int(next(g for g in told.groups() if g)) if told else None
            if code in (errno.ENOSPC, errno.EDQUOT):
                error = OSError(code, os.strerror(code or 0))
            elif not isinstance(error, OSError):
                return None
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            reason = os.strerror(error.errno)  # h5py's own text runs over lines
        elif error.errno is None and _SHORT_WRITE.match(str(error)):
            reason = f"a short write, {error}"
        else:
            return None
        where = f" to {path}" if path is not None else ""
        return cls(
            f"the disk is full ({reason}) writing {what}{where}; "
            f"free some space and run the same command again: {again}"
        )
