"""``semanticsplat view FILE.ply``: serve an exported scene or a saved map in the browser.

    semanticsplat view out/scene.ply               # http://127.0.0.1:8080/ until Ctrl-C
    semanticsplat view map.ply --port 8090 --host 0.0.0.0

A bad or missing file is a one-line error and exit status 2. Text queries and point prompts
need a live scene (the node's viewer); a file shows its splats or its map cloud in every
colour mode its fields allow.
"""

from __future__ import annotations

import argparse
import sys
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a scene PLY (semanticsplat export-ply) or a saved map PLY")
    parser.add_argument("--port", type=int, default=8080, help="TCP port (0 = any free port)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to bind (default loopback only; 0.0.0.0 exposes the scene to the network)",
    )
    parser.add_argument(
        "--mode",
        default="rgb",
        help="initial colour mode: rgb, class, segmentation, language (default rgb)",
    )
    parser.add_argument(
        "--seconds", type=float, default=0.0, help="serve this long, then exit (0 = until Ctrl-C)"
    )


def run(args: argparse.Namespace) -> int:
    from semanticsplat_ros.viewer.files import load_view_file
    from semanticsplat_ros.viewer.server import SceneViewer, ViewerConfig
    from semanticsplat_ros.viewer.splats import check_mode

    try:
        check_mode(args.mode)
        content = load_view_file(args.file)
        config = ViewerConfig(port=args.port, host=args.host)
        viewer = SceneViewer(config)
    except (ValueError, TypeError, OSError) as exc:
        print(f"semanticsplat view: error: {exc}", file=sys.stderr)
        return 2
    try:
        if content.splats is not None:
            viewer.update_splats(content.splats)
        if content.cloud is not None:
            viewer.update_map(content.cloud)
        viewer.set_mode(args.mode)
        viewer.flush()
        print(f"{content.describe()}\nserving {viewer.url} (Ctrl-C to stop)", flush=True)
        deadline = time.monotonic() + args.seconds if args.seconds > 0 else None
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        viewer.stop()
    return 0
