"""`ser extract` on audio in containers: MELD's release (.mp4 clips, 48 kHz stereo AAC)
extracted end to end, a clip that does not decode failing alone with its reason, and the
decoders named in the sets' provenance."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ser.cache import FeatureStore
from ser.cli import main
from ser.corpus.audio import audio_info, decoders, load_audio
from ser.extract.registry import build_extractor


@pytest.mark.slow
def test_meld_as_released_extracts_and_bad_clips_fail_alone(
    meld_release: Any, tmp_path: Path
) -> None:
    root = shutil.copytree(meld_release.root, tmp_path / "MELD.Raw")
    garbage = root / "dev_splits_complete" / "dia0_utt1.mp4"
    garbage.write_bytes(b"\x00\x01 not a clip " * 400)
    cut = root / "output_repeated_splits_test" / "dia0_utt0.mp4"
    cut.write_bytes(cut.read_bytes()[:700])
    store = tmp_path / "meld.zarr"

    result = CliRunner().invoke(
        main, ["extract", str(root), "--store", str(store), "--features", "logmel", "--quiet"]
    )

    assert result.exit_code == 1, result.output  # as for any file that fails
    assert "3 utterance(s) could not be extracted" in result.output
    features = FeatureStore.open(store)
    reasons = dict(features.failures("logmel80"))
    assert set(reasons) == {"dev_dia0_utt1", "test_dia0_utt0", *meld_release.empty}
    for utt_id, clip in (("dev_dia0_utt1", garbage), ("test_dia0_utt0", cut)):
        assert reasons[utt_id].startswith(f"cannot decode audio file {clip}: ")
        assert (
            "\n" not in reasons[utt_id] and f"{utt_id} [logmel80]: cannot decode" in result.output
        )
    # every other clip extracted, as from its decoded audio directly
    data, ids = features.read("logmel80"), list(features.manifest.utt_ids)
    rows = np.diff(data.offsets)
    assert all((rows[i] == 0) == (u in reasons) for i, u in enumerate(ids))
    one = ids.index("train_dia1_utt0")
    clip = root / "train_splits" / "dia1_utt0.mp4"
    assert audio_info(clip).rate == 48000 and audio_info(clip).channels == 2
    logmel = build_extractor("logmel")
    logmel.load(torch.device("cpu"))
    [expected] = logmel.extract([load_audio(clip, 16000)])
    np.testing.assert_array_equal(data.utterance(one), expected["logmel80"].astype(np.float16))
    assert features.info("logmel80").attrs["decoder"] == decoders()
    assert features.manifest.column("wav")[one] == "train_splits/dia1_utt0.mp4"
