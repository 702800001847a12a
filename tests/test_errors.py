"""The errors ser reports in one line (ser.errors): a full disk told from other OSErrors;
names refused unless each is a known one (`chosen`)."""

from __future__ import annotations

import errno
import os
import pickle

import pytest

from ser.errors import ConfigError, DiskFullError, chosen

H5PY = (
    "Driver write request failed (file write failed: time = Thu Nov 26 11:51:48 2026\n, "
    "filename = 'f.h5', errno = 28, error message = 'No space left on device')"
)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), "Disk quota exceeded"),
        (OSError(errno.ENOSPC, H5PY), "No space left on device"),  # one line, not h5py's
        # numpy's own (`ndarray.tofile`, under np.save): a short write, no errno
        (OSError("5401200 requested and 847808 written"), "a short write, 5401200 requested"),
    ],
)
def test_a_full_disk_is_one_line_naming_the_file_and_what_it_holds(
    error: OSError, reason: str
) -> None:
    full = DiskFullError.of(error, "/x/f.zarr", "the feature sets")
    assert full is not None and "\n" not in str(full)
    assert str(full).startswith(f"the disk is full ({reason}")
    assert "writing the feature sets to /x/f.zarr; free some space and run the same " in str(full)
    assert str(full).endswith("again: it resumes where it stopped, keeping what was written before")


def test_other_errors_are_not_a_full_disk() -> None:
    assert DiskFullError.of(OSError(errno.EACCES, "Permission denied"), "p", "x") is None
    assert DiskFullError.of(OSError("3 requested"), "p", "x") is None
    assert DiskFullError.of(ValueError("No space left on device"), "p", "x") is None


def test_it_crosses_processes_intact() -> None:
    """A pool process's full disk reaches the `ser` process as it was raised."""
    full = DiskFullError.of(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), "/p", "x")
    assert str(pickle.loads(pickle.dumps(full))) == str(full)


def test_chosen_names_keep_their_order_once_and_refuse_unknown_or_none() -> None:
    def refusal(unknown: list[str]) -> str:
        return f"unknown {', '.join(unknown) or '(none)'}"

    assert chosen(["b", "a", "b"], ("a", "b", "c"), refusal) == ["b", "a"]
    with pytest.raises(ConfigError, match=r"^unknown x, y$"):
        chosen(["x", "a", "y", "x"], ("a",), refusal)
    with pytest.raises(ConfigError, match=r"^unknown \(none\)$"):
        chosen([], ("a",), refusal)


def test_a_value_an_option_cannot_take_is_a_value_error() -> None:
    import ser

    with pytest.raises(ValueError, match=r"epochs: 2\.7 is not an integer"):
        ser.train(store="f.zarr", features="logmel80", epochs=2.7)
