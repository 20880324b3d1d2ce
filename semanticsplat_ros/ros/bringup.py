"""``semanticsplat bringup``: the graph of launch/bringup.launch.py, where ``ros2 launch`` is missing.

Starts ``semanticsplat_node`` and (unless ``--no-sim-rig``) ``sim_rig`` as subprocesses of this
Python, each with ``--ros-args --params-file <yaml>`` from the same parameters file the launch
file uses (``config/bringup.yaml`` by default), so both ways give the same nodes, names,
namespace and parameters. SIGINT/SIGTERM are forwarded to the nodes; when one node exits on its
own (e.g. a configure failure), the others are stopped and its exit code returned.

    semanticsplat bringup
    semanticsplat bringup --no-sim-rig --namespace robot1 --params-file my.yaml \\
        --remap head_left/image_raw:=/cam0/color/image_raw

The command builders (``node_command``, ``sim_rig_command``) and ``Graph`` are reused by the
node benchmark and the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from semanticsplat_ros.ros.params import NODE_NAME, load_params_file

PACKAGE = "semanticsplat_ros"
SIM_RIG_NAME = "sim_rig"
_LOG = logging.getLogger("semanticsplat.bringup")


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """Set environment variables for the duration (this process's DDS participant reads them);
    yields the whole environment, for children."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield dict(os.environ)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def default_params_file() -> Path:
    """``config/bringup.yaml`` of a source checkout, else of the installed package's share."""
    local = Path(__file__).resolve().parents[2] / "config" / "bringup.yaml"
    if local.is_file():
        return local
    try:
        from ament_index_python.packages import get_package_share_directory

        shared = Path(get_package_share_directory(PACKAGE)) / "config" / "bringup.yaml"
    except (ImportError, LookupError):
        shared = None
    if shared is not None and shared.is_file():
        return shared
    raise FileNotFoundError(
        "config/bringup.yaml not found next to the package or in its ament share; pass"
        " --params-file"
    )


def format_param_value(value: Any) -> str:
    """A value as ``-p name:=value`` wants it (YAML: true/false, 1.0, [a, b], text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text if any(c in text for c in ".eEn") else text + ".0"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_param_value(v) for v in value) + "]"
    if isinstance(value, str):
        return value
    raise TypeError(f"cannot pass a {type(value).__name__} as a ROS parameter")


def parse_assignments(items: Sequence[str], what: str) -> list[tuple[str, str]]:
    """``["a:=b", ...]`` -> ``[("a", "b"), ...]``; ValueError for a malformed item."""
    pairs = []
    for item in items:
        key, sep, value = item.partition(":=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{what} {item!r} must look like name:=value")
        pairs.append((key.strip(), value.strip()))
    return pairs


def _ros_args(
    module: str,
    node_name: str,
    params_file: Path,
    namespace: str,
    use_sim_time: bool,
    parameters: Mapping[str, Any] | Sequence[tuple[str, str]],
    remappings: Sequence[tuple[str, str]],
) -> list[str]:
    cmd = [sys.executable, "-m", module, "--ros-args", "-r", f"__node:={node_name}"]
    ns = namespace.strip("/")
    if ns:
        cmd += ["-r", f"__ns:=/{ns}"]
    cmd += ["--params-file", str(params_file)]
    if use_sim_time:
        cmd += ["-p", "use_sim_time:=true"]
    items = parameters.items() if isinstance(parameters, Mapping) else parameters
    for name, value in items:
        text = value if isinstance(value, str) else format_param_value(value)
        cmd += ["-p", f"{name}:={text}"]
    for source, target in remappings:
        cmd += ["-r", f"{source}:={target}"]
    return cmd


def node_command(
    params_file: str | Path,
    namespace: str = "",
    use_sim_time: bool = False,
    parameters: Mapping[str, Any] | Sequence[tuple[str, str]] = (),
    remappings: Sequence[tuple[str, str]] = (),
) -> list[str]:
    """Command line of ``semanticsplat_node`` as the launch file starts it."""
    return _ros_args(
        "semanticsplat_ros.ros.node",
        NODE_NAME,
        Path(params_file),
        namespace,
        use_sim_time,
        parameters,
        remappings,
    )


def sim_rig_command(
    params_file: str | Path,
    namespace: str = "",
    use_sim_time: bool = False,
    parameters: Mapping[str, Any] | Sequence[tuple[str, str]] = (),
) -> list[str]:
    """Command line of ``sim_rig`` as the launch file starts it."""
    return _ros_args(
        "semanticsplat_ros.ros.sim_rig",
        SIM_RIG_NAME,
        Path(params_file),
        namespace,
        use_sim_time,
        parameters,
        (),
    )


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM it when the starting process dies, so a crashed or
    killed launcher (or test run) leaves no orphaned nodes behind. A no-op elsewhere. Linux sends
    it when the *thread* that started the child exits: start graphs from a long-lived thread."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class Graph:
    """A set of node subprocesses started together and stopped together.

    Children get their own process group, so a terminal's Ctrl-C reaches them once: forwarded
    by ``stop``, not also directly from the terminal.
    """

    def __init__(
        self,
        commands: Mapping[str, Sequence[str]],
        env: Mapping[str, str] | None = None,
        stdout: Any = None,
        stderr: Any = None,
    ) -> None:
        if not commands:
            raise ValueError("a graph needs at least one command")
        self.commands = {name: list(cmd) for name, cmd in commands.items()}
        self.env = dict(os.environ if env is None else env)
        self._stdout, self._stderr = stdout, stderr
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self) -> None:
        for name, cmd in self.commands.items():
            self.processes[name] = subprocess.Popen(
                cmd,
                env=self.env,
                stdout=self._stdout,
                stderr=self._stderr,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    def exited(self) -> dict[str, int]:
        """Exit codes of the children that have exited."""
        return {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> dict[str, int]:
        """Send ``sig`` to every running child, wait up to ``timeout`` s, then SIGKILL the rest.

        Returns every child's exit code (negative: killed by that signal).
        """
        for p in self.processes.values():
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(sig)
        deadline = time.monotonic() + timeout
        for name, p in self.processes.items():
            try:
                p.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                _LOG.warning(
                    "%s did not exit within %.0f s of signal %d: killing it", name, timeout, sig
                )
                p.kill()
                p.wait()
        return {n: p.returncode for n, p in self.processes.items()}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--params-file",
        type=Path,
        default=None,
        help="parameters YAML for semanticsplat_node and sim_rig (default: config/bringup.yaml)",
    )
    parser.add_argument("--namespace", default="", help="ROS namespace of every node")
    parser.add_argument(
        "--no-sim-rig", action="store_true", help="do not start sim_rig (real cameras)"
    )
    parser.add_argument("--use-sim-time", action="store_true", help="follow /clock")
    parser.add_argument(
        "--remap",
        action="append",
        default=[],
        metavar="FROM:=TO",
        help="extra semanticsplat_node remapping (repeatable)",
    )
    parser.add_argument(
        "--node-param",
        action="append",
        default=[],
        metavar="NAME:=VALUE",
        help="override a semanticsplat_node parameter (repeatable)",
    )
    parser.add_argument(
        "--rig-param",
        action="append",
        default=[],
        metavar="NAME:=VALUE",
        help="override a sim_rig parameter (repeatable)",
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        default=20.0,
        help="seconds the nodes get to exit after a signal before they are killed",
    )


def run(args: argparse.Namespace) -> int:
    """Run the graph until SIGINT/SIGTERM (forwarded) or until a node exits."""
    params_file = Path(args.params_file) if args.params_file else default_params_file()
    # Fail early, with every problem listed, instead of a node dying at start.
    load_params_file(params_file, namespace=args.namespace)
    node_params = parse_assignments(args.node_param, "--node-param")
    rig_params = parse_assignments(args.rig_param, "--rig-param")
    remaps = parse_assignments(args.remap, "--remap")
    if args.shutdown_timeout <= 0:
        raise ValueError(f"--shutdown-timeout must be > 0, got {args.shutdown_timeout}")
    commands = {
        NODE_NAME: node_command(params_file, args.namespace, args.use_sim_time, node_params, remaps)
    }
    if not args.no_sim_rig:
        commands[SIM_RIG_NAME] = sim_rig_command(
            params_file, args.namespace, args.use_sim_time, rig_params
        )
    graph = Graph(commands)
    received: list[int] = []
    wake = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        received.append(signum)
        wake.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        graph.start()
        sys.stderr.write(
            f"semanticsplat bringup: started {', '.join(commands)} with {params_file}"
            f" (pids {', '.join(str(graph.pid(n)) for n in commands)})\n"
        )
        while not wake.is_set() and not graph.exited():
            wake.wait(0.2)
        if received:
            codes = graph.stop(received[0], args.shutdown_timeout)
            failed = {n: c for n, c in codes.items() if c != 0}
            if failed:
                sys.stderr.write(f"semanticsplat bringup: nodes exited with {failed}\n")
                return 1
            return 0
        exited = graph.exited()
        name, code = next(iter(exited.items()))
        sys.stderr.write(
            f"semanticsplat bringup: {name} exited with code {code}; stopping the other nodes\n"
        )
        graph.stop(signal.SIGTERM, args.shutdown_timeout)
        return code
    finally:
        if any(p.poll() is None for p in graph.processes.values()):
            graph.stop(signal.SIGTERM, args.shutdown_timeout)
        for s, handler in previous.items():
            signal.signal(s, handler)
