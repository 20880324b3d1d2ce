"""DistributedDataParallel through ``torchrun`` (two CPU processes, gloo).

Stage 1 is the demanding case: its loss renders and expands features outside the network's
forward, and the run stops on a wall-clock budget that both ranks must agree on.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from semanticsplat_ros.model import load_model

TORCHRUN = Path(sys.executable).with_name("torchrun")


@pytest.mark.skipif(not TORCHRUN.is_file(), reason="torchrun is not installed next to python")
def test_torchrun_two_processes_train_stage1_and_stop_together(tmp_path: Path) -> None:
    semanticsplat = shutil.which("semanticsplat", path=str(TORCHRUN.parent))
    assert semanticsplat, "the semanticsplat console script is not installed"
    out = tmp_path / "ddp"
    cmd = [
        str(TORCHRUN), "--standalone", "--nproc_per_node=2", semanticsplat, "train",
        "--config", "small_stage1", "--out", str(out), "--steps", "100000", "--batch-size", "1",
        "--set", "height=32", "--set", "width=32", "--set", "threads=1",
        "--set", "max_minutes=0.1", "--set", "checkpoint_every=100000", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "done: step" in proc.stdout
    _, meta = load_model(out / "model.pt")
    assert meta["stage"] == 1 and meta["step"] >= 1
