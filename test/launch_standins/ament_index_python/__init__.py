"""Stand-in ``ament_index_python`` (tests only): the source tree is the package share."""

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

__all__ = ["PackageNotFoundError", "get_package_share_directory"]
