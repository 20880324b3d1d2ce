"""ament_python package setup for semanticsplat_ros."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "semanticsplat_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: ["assets/*", "assets/**/*", "train/configs/*.yaml"]},
    include_package_data=True,
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="semanticsplat_ros maintainers",
    maintainer_email="maintainers@semanticsplat-ros.dev",
    description="Feed-forward semantic Gaussian splatting for robots.",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "semanticsplat = semanticsplat_ros.cli:main",
            "semanticsplat_node = semanticsplat_ros.ros.node:main",
            "sim_rig = semanticsplat_ros.ros.sim_rig:main",
            "semanticsplat_record = semanticsplat_ros.ros.recorder:main",
        ],
    },
)
