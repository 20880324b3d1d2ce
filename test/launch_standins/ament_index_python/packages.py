"""Stand-in ``ament_index_python.packages`` (tests only).

The repository root has the share layout (config/, launch/), so it stands in for
share/semanticsplat_ros; other packages (rviz2) get a fake path.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


class PackageNotFoundError(KeyError):
    pass


def get_package_share_directory(package_name: str, print_warning: bool = True) -> str:
    if package_name == "semanticsplat_ros":
        return str(ROOT)
    raise PackageNotFoundError(f"package {package_name!r} not found (launch stand-in)")
