"""Test-wide settings: keep DDS on loopback with a domain id of this run's own.

These are set before any test imports rclpy, and are inherited by subprocesses the tests start.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import bag_helpers

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA")
if "SEMANTICSPLAT_TEST_DOMAIN" not in os.environ:
    # Fast DDS domain ids 1..100 map to distinct port ranges; pick one per pytest run so that
    # concurrent runs on one machine do not see each other's nodes.
    os.environ["ROS_DOMAIN_ID"] = str(random.SystemRandom().randint(1, 100))
    os.environ["SEMANTICSPLAT_TEST_DOMAIN"] = os.environ["ROS_DOMAIN_ID"]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The encoder's ONNX exports (runtime auto on the CPU) go to a cache of this run's own; the
# random-weight models are seeded, so each input layout is exported once per run.
_CACHE = tempfile.mkdtemp(prefix="semanticsplat_test_cache_")
os.environ["SEMANTICSPLAT_CACHE_DIR"] = _CACHE
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def sim_bag_run(tmp_path_factory: pytest.TempPathFactory) -> bag_helpers.SimBagRun:
    """A recorded sim-rig bag and its ``bag run`` output (test/bag_helpers.py), built once."""
    import bag_helpers  # here, not at the top: it imports torch and rclpy

    return bag_helpers.record_and_run(tmp_path_factory.mktemp("sim_bag_run"))


@pytest.fixture(scope="session")
def released(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Random-weight vit_b SAM and ViT-B-16 open_clip files (~1 GB, deleted afterwards), saved
    as the plain state dicts the released checkpoints are: ``{"sam": path, "clip": path}``."""
    # here, not at the top: heavy imports only for the tests that use them
    from semanticsplat_ros.teachers.stand_ins import save_released_stand_ins

    files = save_released_stand_ins(tmp_path_factory.mktemp("released"))
    yield files
    for path in files.values():
        path.unlink(missing_ok=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_CACHE, ignore_errors=True)
