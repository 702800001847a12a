"""`ser.track.tfevents`: an event file's events counted, one cut short found, and the
writer's file names made without the host's."""

from __future__ import annotations

import socket
from pathlib import Path

from ser.track.tfevents import anonymous, events, problem


def _written(folder: Path, points: int) -> Path:
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(folder)) as writer:
        for step in range(points):
            writer.add_scalar("train_loss", 1.0 / (step + 1), step)
    (path,) = folder.iterdir()
    return path


def test_a_whole_file_holds_its_version_and_each_point(tmp_path: Path) -> None:
    path = _written(tmp_path, 5)
    assert events(path) == 6
    assert problem(tmp_path, 5) is None
    assert problem(tmp_path, 7) == "holds 5 of its 7 points"


def test_a_file_cut_short_is_found(tmp_path: Path) -> None:
    path = _written(tmp_path, 5)
    path.write_bytes(path.read_bytes()[:-3])
    assert events(path) is None
    assert problem(tmp_path, 5) == f"has an event file cut short ({path.name})"
    path.unlink()
    assert problem(tmp_path, 5) == "holds no event file"


def test_the_writer_s_names_lose_the_host_and_process(tmp_path: Path) -> None:
    path = _written(tmp_path, 1)
    when, host = path.name.split(".")[3], socket.gethostname()
    assert path.name.startswith(f"events.out.tfevents.{when}.{host}.")  # TensorBoard's way
    anonymous(tmp_path)
    (renamed,) = tmp_path.iterdir()
    assert renamed.name == f"events.out.tfevents.{when}.ser.{path.name.rsplit('.', 1)[1]}"
    assert problem(tmp_path, 1) is None
    anonymous(tmp_path)  # a name of ser's is kept
    assert list(tmp_path.iterdir()) == [renamed]
