"""The core (everything outside semanticsplat_ros/ros/) never imports rclpy."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import semanticsplat_ros

ROOT = Path(semanticsplat_ros.__file__).parent


def core_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages([str(ROOT)], prefix="semanticsplat_ros."):
        if info.name == "semanticsplat_ros.ros" or info.name.startswith("semanticsplat_ros.ros."):
            continue
        names.append(info.name)
    return sorted(names)


def test_there_are_core_modules_to_check():
    mods = core_modules()
    assert "semanticsplat_ros.geometry.projection" in mods
    assert "semanticsplat_ros.cli" in mods


def test_core_does_not_import_rclpy():
    mods = core_modules()
    code = (
        "import importlib, sys\n"
        f"mods = {mods!r}\n"
        "for m in mods:\n"
        "    importlib.import_module(m)\n"
        "bad = sorted(k for k in sys.modules if k == 'rclpy' or k.startswith('rclpy.'))\n"
        "print('RCLPY' if bad else 'CLEAN', len(mods))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "CLEAN", "a core module imported rclpy"
    assert int(out.stdout.split()[1]) == len(mods)


def test_pipeline_import_is_rclpy_free():
    assert (ROOT / "pipeline.py").is_file()
    code = "import sys, semanticsplat_ros.pipeline; print('rclpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
