"""semanticsplat_ros: feed-forward semantic Gaussian splatting for robots.

The core (everything outside ``semanticsplat_ros.ros``) never imports rclpy.
"""

__version__ = "0.1.0"
