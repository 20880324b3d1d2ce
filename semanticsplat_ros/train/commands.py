"""``semanticsplat train``: one training stage from a YAML config plus command-line overrides.

Examples::

    semanticsplat train --config small --stage 0 --steps 6000 --seeds 0:5000 --out runs/stage0
    semanticsplat train --config small --resume --out runs/stage0      # continue a run
    torchrun --nproc-per-node 4 -m semanticsplat_ros.cli train --config paper   # DDP
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).with_name("configs")


def available_configs() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def load_config_file(name_or_path: str) -> dict[str, Any]:
    """The mapping in ``train/configs/NAME.yaml`` or in the YAML file at a path."""
    import yaml

    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIG_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ValueError(
            f"training config {name_or_path!r} not found (a path, or one of {available_configs()})"
        )
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"training config {path} must be a mapping of TrainConfig fields")
    return data


def _parse_value(text: str) -> Any:
    import yaml

    value = yaml.safe_load(text)
    # YAML 1.1 reads "1e-3" (no dot) as a string; a number is what was meant.
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+(\.\d*)?[eE][+-]?\d+", value):
        return float(value)
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default="small", help=f"config name ({', '.join(available_configs())}) or path"
    )
    parser.add_argument("--stage", type=int, choices=[0, 1, 2], help="training stage")
    parser.add_argument("--steps", type=int, help="optimiser steps")
    parser.add_argument("--seeds", help="synthetic scenes START:END or a split name")
    parser.add_argument(
        "--data", help="folder of ScanNet-layout scenes to train on instead of the synthetic world"
    )
    parser.add_argument("--out", help="output folder")
    parser.add_argument(
        "--teacher-cache",
        dest="teacher_cache",
        help="stages 1/2 with --data: teacher features from semanticsplat cache-teachers",
    )
    parser.add_argument("--init", help="checkpoint to start from (e.g. the stage-0 model)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints")
    parser.add_argument("--batch-size", type=int, dest="batch_size", help="examples per step")
    parser.add_argument("--lr", type=float, help="learning rate")
    parser.add_argument("--height", type=int, help="training image height")
    parser.add_argument("--width", type=int, help="training image width")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="device")
    parser.add_argument("--seed", type=int, help="random seed")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any TrainConfig field (YAML value; loss.KEY for loss options, arch.A.B for the model config)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_config(args: argparse.Namespace) -> Any:
    """TrainConfig from the YAML file, then --set overrides, then the explicit options."""
    from semanticsplat_ros.train.trainer import TrainConfig

    data = load_config_file(args.config)
    for item in args.set:
        if "=" not in item:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        *parents, leaf = key.split(".")
        node = data
        for part in parents:  # loss.KEY, arch.cost_volume.num_depths, ...
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"--set {key}: {part!r} is not a group of options")
            node = child
        node[leaf] = _parse_value(value)
    for f in dataclasses.fields(TrainConfig):
        value = getattr(args, f.name, None)
        if value is not None and value is not False:
            data[f.name] = value
    return TrainConfig.from_dict(data)


def run(args: argparse.Namespace) -> int:
    from semanticsplat_ros.train.trainer import Trainer, close_distributed

    config = build_config(args)
    try:
        trainer = Trainer(config)
        if trainer.is_main:
            print(
                f"training stage {config.stage} of the {trainer.model.config.name!r} model"
                f" -> {config.out}"
            )
        result = trainer.train(progress=not args.no_progress)
    finally:
        close_distributed()  # before exit: gloo's threads aborted a rank left to the interpreter
    if trainer.is_main:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(result.last_terms.items()))
        print(f"done: step {result.step} in {result.seconds:.0f} s; {shown}")
        print(f"model: {result.model_path}")
    return 0
