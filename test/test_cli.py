"""The `semanticsplat` command: help, unknown commands, and a clean error for bad input."""

from __future__ import annotations

import subprocess
import sys

from semanticsplat_ros.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_no_arguments_is_a_usage_error(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_unknown_command(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_help_does_not_import_torch_or_rclpy():
    code = (
        "import sys; from semanticsplat_ros.cli import main; main(['--help']); "
        "print(sorted(m for m in ('torch', 'rclpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
