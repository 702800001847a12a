"""Errors for bad user input.

Library code raises these; the CLI turns them into one clear message and an exit code,
never a traceback. Anything else escaping to the CLI is a bug in ser.
"""

from __future__ import annotations


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


class ConfigError(SerError):
    """Options that cannot work together (e.g. a fusion the features' shapes don't allow)."""


class ModelError(ConfigError):
    """A pretrained model that cannot serve its extractor (e.g. weights missing from its
    checkpoint, which would be initialised at random)."""


class WorkerLost(SerError):
    """A process of a local pool stopped before its work was done (killed: out of memory,
    a signal); what finished before it is kept."""


class ReportError(SerError):
    """A run record is missing, unreadable or lacks what a report needs."""
