"""`ser`'s names for the Python API: there when used, loaded only then."""

from __future__ import annotations

import subprocess
import sys

import ser


def test_import_ser_and_the_cli_load_no_torch() -> None:
    code = (
        "import sys, ser, ser.cli; "
        "assert 'torch' not in sys.modules and 'ser.api' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_name_of_all_is_there() -> None:
    for name in ser.__all__:
        assert getattr(ser, name) is not None
    assert ser.open_store is ser.api.open_store and ser.FeatureDataset is ser.api.FeatureDataset
