"""Random-weight stand-ins for the released teacher checkpoints, written as local files.

Nothing is downloaded here, so the tests and ``semanticsplat bench train`` build segment_anything
``vit_b`` and open_clip ``ViT-B-16`` with random weights and save them as the plain state dicts
that Meta's and open_clip's released files are. They then load like any user's download
(``vit_b:PATH``, ``open_clip:ViT-B-16:PATH``); the architectures, shapes and timings are the
real ones, the features mean nothing.
"""

from __future__ import annotations

from pathlib import Path

import open_clip
import torch

from semanticsplat_ros.teachers.sam import build_sam


def save_released_stand_ins(root: str | Path) -> dict[str, Path]:
    """Write ``sam_vit_b_random.pth`` and ``open_clip_vit_b_16_random.bin`` (~1 GB together)
    under ``root``, each from seed 0; returns ``{"sam": path, "clip": path}``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    sam = root / "sam_vit_b_random.pth"
    torch.save(build_sam("vit_b").state_dict(), sam)
    torch.manual_seed(0)
    clip = root / "open_clip_vit_b_16_random.bin"
    model = open_clip.create_model("ViT-B-16", pretrained=None, pretrained_text=False)
    torch.save(model.state_dict(), clip)
    return {"sam": sam, "clip": clip}
