"""Camera conventions, projection, quaternions and plane-sweep warps (written once, here).

Conventions used everywhere in the package:

* Camera frame: OpenCV (x right, y down, z forward).
* Poses: ``c2w`` maps camera to world coordinates, ``w2c`` the inverse; both 4×4 homogeneous.
* Intrinsics ``K`` are 3×3 in pixels. Pixel (row i, column j) covers [j, j+1) × [i, i+1), so its
  centre is at (j + 0.5, i + 0.5) — gsplat's convention, which keeps ``K`` exact under resizing.
  ROS CameraInfo (OpenCV, centres on integers) is converted in ``ros/conversions.py`` only.
* Quaternions are wxyz (gsplat's order) inside the core.
* Batched tensors are ``(b, v, c, h, w)``: batch, views, channels, height, width.
"""

from semanticsplat_ros.geometry.cameras import (
    check_intrinsics,
    check_pose,
    invert_pose,
    relative_pose,
    scale_intrinsics,
)
from semanticsplat_ros.geometry.plane_sweep import (
    inverse_depth_candidates,
    linear_steps,
    plane_sweep_grid,
    warp_to_reference,
)
from semanticsplat_ros.geometry.projection import (
    homogenize_points,
    pixel_centers,
    point_grid,
    project,
    transform_points,
    unproject,
    unproject_depth,
)
from semanticsplat_ros.geometry.quaternions import (
    normalize_quat,
    quat_multiply,
    quat_to_rotmat,
    rotmat_to_quat,
)

__all__ = [
    "check_intrinsics",
    "check_pose",
    "homogenize_points",
    "inverse_depth_candidates",
    "invert_pose",
    "linear_steps",
    "normalize_quat",
    "pixel_centers",
    "plane_sweep_grid",
    "point_grid",
    "project",
    "quat_multiply",
    "quat_to_rotmat",
    "relative_pose",
    "rotmat_to_quat",
    "scale_intrinsics",
    "transform_points",
    "unproject",
    "unproject_depth",
    "warp_to_reference",
]
