"""``semanticsplat eval``: the paper's tables on held-out synthetic scenes, as Markdown and JSON.

    semanticsplat eval --json out/eval.json --seeds 200000:200020
    semanticsplat eval --compare "w/o HCAM=runs/stage2_nohcam/last.pt" --seeds holdout
    semanticsplat eval --teachers --json out/teachers.json --seeds 200000:200020
    semanticsplat eval --teachers --class-prompts semanticsplat_ros/assets/class_synonyms.yaml
    semanticsplat eval --teachers --unseen-words --seeds 100000:100020

With no ``--checkpoint`` the shipped default model is evaluated. ``--teachers`` evaluates the 2D
teachers alone (tiny SAM point-grid mIoU, tiny LSeg 8-class mIoU). ``--unseen-words`` runs only
the language protocol (of the teacher with ``--teachers``, else of the model's field on target
views) with the class names, K draws of one train-vocabulary text per class and K draws of one
unseen word per class (``assets/class_vocabulary.yaml``), and prints names vs unseen mIoU and
their ratio. Queries are prompt-ensembled (``teachers.prompts``) unless ``--prompt-templates
plain``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from semanticsplat_ros.data.classes import CLASS_NAMES

DEFAULT_SEEDS = "200000:200020"
"""The first 20 hold-out scenes."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="model: a checkpoint file or a bundled name (small, small_stereo); default: small",
    )
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="another checkpoint evaluated with the same protocol (ablations, w/o HCAM)",
    )
    parser.add_argument("--seeds", default=DEFAULT_SEEDS, help="scenes START:END or a split name")
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder of ScanNet-layout scenes to evaluate on instead of synthetic scenes (--seeds)",
    )
    parser.add_argument(
        "--examples-per-scene",
        type=int,
        default=None,
        help="examples drawn per scene (default: 4 with --data, 1 on synthetic scenes)",
    )
    parser.add_argument("--height", type=int, default=None, help="default: the training height")
    parser.add_argument("--width", type=int, default=None, help="default: the training width")
    parser.add_argument("--num-context", type=int, default=2, help="context views per example")
    parser.add_argument("--num-target", type=int, default=2, help="target views per example")
    parser.add_argument(
        "--context-span",
        default="0.5:1.4",
        help="range of seconds between first and last context frame on the trajectory (MIN:MAX)",
    )
    parser.add_argument(
        "--rig",
        default=None,
        help="evaluate on a robot rig's views instead of a moving camera's: context = every camera"
        " of RIG (stereo, head_wrist, ring4) at one instant (--num-context = its camera count),"
        " targets = its cameras within half the span (what small_stereo was fine-tuned on)",
    )
    parser.add_argument(
        "--style",
        default="classic",
        choices=("classic", "varied", "held-out"),
        help="synthetic world style (data.styled): classic (the embedded world), varied (random"
        " rooms, lights, cameras and sensors) or held-out (its shape and material families that"
        " training never sees)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--teachers", action="store_true", help="evaluate the 2D teachers only")
    parser.add_argument(
        "--class-prompts", type=Path, default=None, help="YAML class name -> query text"
    )
    parser.add_argument(
        "--unseen-words",
        action="store_true",
        help="language protocol with class names vs K draws of train / unseen vocabulary words",
    )
    parser.add_argument(
        "--vocabulary-file",
        type=Path,
        default=None,
        help="class vocabulary YAML of --unseen-words (default: the shipped one)",
    )
    parser.add_argument(
        "--unseen-picks", type=int, default=5, help="--unseen-words: random draws K per group"
    )
    parser.add_argument(
        "--prompt-templates",
        choices=("ensemble", "plain"),
        default="ensemble",
        help="embed queries as the mean over prompt templates (ensemble) or as they are (plain)",
    )
    parser.add_argument(
        "--protocols",
        default="nvs,language,promptable,consistency",
        help="comma-separated subset of nvs,language,promptable,consistency",
    )
    parser.add_argument("--grid", type=int, default=32, help="point prompts per image side")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also run the per-scene optimisation baseline (100x our feed-forward time per scene)",
    )
    parser.add_argument(
        "--baseline-scenes", type=int, default=5, help="scenes given to the per-scene baseline"
    )
    parser.add_argument(
        "--baseline-factor", type=float, default=100.0, help="baseline budget / our time per scene"
    )
    parser.add_argument(
        "--teacher-cache",
        type=Path,
        default=None,
        help="with --data: the teachers' features from semanticsplat cache-teachers of that folder"
        " (at the evaluation's resolution) instead of running the teachers",
    )
    parser.add_argument(
        "--sam",
        default=None,
        help="SAM teacher spec (tiny, vit_b:PATH, ...); default: the one the checkpoint records",
    )
    parser.add_argument(
        "--language",
        default=None,
        help="language teacher spec (tiny_lseg, open_clip:ARCH:PATH); default: the checkpoint's",
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _fmt(value: object, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _get(d: dict, path: str) -> object:
    for part in path.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def markdown_tables(results: dict, names: list[str]) -> str:
    """Tables 1-3 of the paper from ``results`` (rows: ``names`` then the 2D teacher)."""
    lines = []
    if "nvs" in results:
        lines += [
            "Table 1: novel-view synthesis on target views",
            "",
            "| method | PSNR ↑ | SSIM ↑ | LPIPS ↓ | depth AbsRel ↓ |",
            "|---|---|---|---|---|",
        ]
        for name in names:
            row = results["rows"][name]
            lines.append(
                f"| {name} | {_fmt(_get(row, 'nvs.psnr'), 2)} | {_fmt(_get(row, 'nvs.ssim'))} "
                f"| {_fmt(_get(row, 'nvs.lpips'))} | {_fmt(_get(row, 'depth.abs_rel'))} |"
            )
        lines.append("")
    for key, title, extra in (
        ("language", "Table 2: open-vocabulary segmentation (8 classes)", "consistency"),
        ("promptable", "Table 3: promptable segmentation (32×32 point grid, best of 3 masks)", ""),
    ):
        if key in results:
            lines += _method_table(results, names, key, title, extra)
        if key == "language" and key in results:
            lines += _per_class_table(results, names)
    return "\n".join(lines)


def _per_class_table(results: dict, names: list[str]) -> list[str]:
    """Target-view IoU per class, our rows then the 2D teacher."""
    lines = ["Target-view IoU per class", "", "| method | " + " | ".join(CLASS_NAMES) + " |"]
    lines.append("|---" * (len(CLASS_NAMES) + 1) + "|")
    for label, row, col in _method_rows(results, names):
        per_class = _get(row, f"language.target.{col}.per_class")
        if not isinstance(per_class, dict):
            continue
        cells = [_fmt(per_class.get(c)) for c in CLASS_NAMES]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _sampling(span: str, rig: str | None = None, style: str = "classic"):
    from semanticsplat_ros.data.synthetic import ViewSampling

    lo, sep, hi = span.partition(":")
    try:
        low, high = float(lo), float(hi)
    except ValueError:
        low = high = float("nan")
    if not sep or not 0 < low <= high:
        raise ValueError(f"--context-span takes MIN:MAX seconds with 0 < MIN <= MAX, got {span!r}")
    if rig is None:
        return ViewSampling(min_span_s=low, max_span_s=high, style=style)
    return ViewSampling(min_span_s=low, max_span_s=high, rig=rig, rig_instant=True, style=style)


def _method_rows(results: dict, names: list[str]) -> list[tuple[str, dict, str]]:
    """(label, results row, column) for our checkpoints, then the 2D teacher (whose figures
    live in the first row's ``teacher`` column)."""
    rows = [(name, results["rows"][name], "ours") for name in names]
    return [*rows, ("2D teacher (per view)", results["rows"][names[0]], "teacher")]


def _method_table(results: dict, names: list[str], key: str, title: str, extra: str) -> list[str]:
    """Rows for our checkpoints then the 2D teacher: mIoU / Acc on source and target views (and
    ``key.<extra>.<column>`` as a last column when ``extra`` is given)."""
    header = "| method | source mIoU ↑ | source Acc ↑ | target mIoU ↑ | target Acc ↑ |"
    header += f" {extra} ↑ |" if extra else ""
    lines = [title, "", header, "|---" * (6 if extra else 5) + "|"]
    for label, row, col in _method_rows(results, names):
        cells = [
            _get(row, f"{key}.{split}.{col}.{metric}")
            for split in ("source", "target")
            for metric in ("miou", "acc")
        ]
        if extra:
            cells.append(_get(row, f"{key}.{extra}.{col}"))
        lines.append(f"| {label} | " + " | ".join(_fmt(c) for c in cells) + " |")
    return [*lines, ""]


def _parse_compare(items: list[str]) -> list[tuple[str, Path]]:
    out = []
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ValueError(f"--compare takes NAME=PATH, got {item!r}")
        out.append((name.strip(), Path(path.strip())))
    return out


def run(args: argparse.Namespace) -> int:
    import torch

    from semanticsplat_ros.data.splits import parse_seeds
    from semanticsplat_ros.device import resolve_device
    from semanticsplat_ros.eval.teachers import class_queries, load_class_prompts
    from semanticsplat_ros.model.bundled import resolve_model_checkpoint

    seeds = parse_seeds(args.seeds)
    device = resolve_device(args.device)
    class_prompts = load_class_prompts(args.class_prompts) if args.class_prompts else None
    progress = not args.no_progress
    started = time.perf_counter()
    if args.teacher_cache is not None and args.data is None:
        raise ValueError("--teacher-cache reads the features of --data's frames; give --data")
    if args.data is not None and (args.baseline or args.teachers):
        raise ValueError("--baseline and --teachers run on synthetic scenes (--seeds), not --data")
    if args.rig is not None and (args.data is not None or args.teachers):
        raise ValueError(
            "--rig renders synthetic scenes for our model; not with --data or --teachers"
        )
    results: dict = {
        "seeds": f"{seeds.start}:{seeds.stop}",
        "class_prompts": class_queries(class_prompts),
    }
    if args.data is not None:
        results["data"] = str(args.data)
        del results["seeds"]
    if args.rig is not None:
        results["rig"] = args.rig
    if args.style != "classic":
        if args.data is not None:
            raise ValueError("--style picks synthetic scenes; not with --data")
        results["style"] = args.style

    templates = _templates(args)
    results["templates"] = list(templates)
    if args.unseen_words and args.unseen_picks < 1:
        raise ValueError(f"--unseen-picks must be >= 1, got {args.unseen_picks}")
    if args.teachers:
        from semanticsplat_ros.eval.teachers import evaluate_teachers, unseen_word_check

        h, w = args.height or 64, args.width or 64
        lang = _teacher_language(args)
        if args.unseen_words:
            results["unseen_words"] = unseen_word_check(
                seeds, _vocabulary(args), h, w, args.unseen_picks, lang, templates,
                progress=progress, style=args.style,
            )  # fmt: skip
            results["unseen_words"]["of"] = "teacher"
        else:
            results.update(
                evaluate_teachers(
                    seeds,
                    h,
                    w,
                    class_prompts=class_prompts,
                    progress=progress,
                    lang_teacher=lang,
                    templates=templates,
                    style=args.style,
                )
            )
        results["resolution"] = [h, w]
        results["seconds"] = time.perf_counter() - started
        _emit(results, args.json, "")
        return 0

    from semanticsplat_ros.checkpoint import load_checkpoint
    from semanticsplat_ros.eval.protocols import ProtocolSettings, evaluate_model
    from semanticsplat_ros.model.semanticsplat import load_model, trained_near
    from semanticsplat_ros.teachers.frame_cache import CachedTeacherDataset, FrameFeatureCache
    from semanticsplat_ros.teachers.prompts import embed_prompts
    from semanticsplat_ros.teachers.spec import (
        check_model_teachers,
        load_language_teacher,
        load_sam_teacher,
        spec_to_checkpoint_dict,
    )

    protocols = tuple(p.strip() for p in args.protocols.split(",") if p.strip())
    rows = [
        (name, resolve_model_checkpoint(path))
        for name, path in [("ours", args.checkpoint), *_parse_compare(args.compare)]
    ]
    metas = [load_checkpoint(path).meta for _, path in rows]
    sam_spec, language_spec = _teacher_specs(args, metas[0])
    for (_, path), meta in zip(rows, metas, strict=True):  # before any teacher is loaded
        check_model_teachers(meta, sam_spec, language_spec, f"checkpoint {path}")
    sam = load_sam_teacher(sam_spec, device)
    loaded = load_language_teacher(language_spec, device)
    lang = loaded.teacher
    if args.unseen_words:
        results["seconds"] = started  # replaced by the elapsed time
        return _model_unseen_words(args, results, rows[0][1], seeds, sam, loaded, device, templates)
    class_embeddings = embed_prompts(
        loaded.text_encoder, class_queries(class_prompts), templates
    ).to(device)
    results["teacher_specs"] = {"sam": sam_spec.to_string(), "language": language_spec.to_string()}
    settings = ProtocolSettings(grid=args.grid, protocols=protocols)
    results["rows"] = {}
    results["checkpoints"] = {name: str(path) for name, path in rows}
    for i, (name, path) in enumerate(rows):
        model, meta = load_model(path, map_location=device)
        trained = meta.get("train_config", {}) if isinstance(meta, dict) else {}
        h = args.height or int(trained.get("height", 64))
        w = args.width or int(trained.get("width", 64))
        dataset = _dataset(args, seeds, h, w, trained_near(meta))
        if args.teacher_cache is not None:
            cache = FrameFeatureCache(args.teacher_cache)
            cache.check(spec_to_checkpoint_dict(sam_spec, language_spec), h, w)
            dataset = CachedTeacherDataset(dataset, cache)
        if i == 0:
            ours_near = trained_near(meta)
        t0 = time.perf_counter()
        row = evaluate_model(
            model,
            dataset,
            sam,
            lang,
            class_embeddings,
            settings,
            with_teacher=i == 0,
            device=device,
            progress=progress,
            desc=f"eval {name}",
        )
        row["seconds"] = time.perf_counter() - t0
        row["resolution"] = [h, w]
        scenes = _baseline_scenes(args, seeds)
        if i == 0 and args.baseline and args.data is None and len(scenes) < len(seeds):
            # The baseline runs on the first scenes only: compare it with ours on those scenes.
            row["on_baseline_scenes"] = evaluate_model(
                model,
                _dataset(args, scenes, h, w, ours_near),
                sam,
                lang,
                class_embeddings,
                ProtocolSettings(grid=args.grid, protocols=("nvs", "language")),
                with_teacher=False,
                device=device,
                progress=progress,
                desc="eval ours on the baseline's scenes",
            )
        results["rows"][name] = row
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if args.baseline:
        results["baseline"] = _run_baseline(
            args, results["rows"]["ours"], sam, lang, class_embeddings, seeds, device, progress,
            near=ours_near,
        )  # fmt: skip
    main = results["rows"]["ours"]
    for key in ("nvs", "depth", "language", "promptable", "resolution", "num_examples"):
        if key in main:
            results[key] = main[key]
    results["seconds"] = time.perf_counter() - started
    _emit(results, args.json, markdown_tables(results, [name for name, _ in rows]))
    return 0


def _templates(args: argparse.Namespace) -> tuple[str, ...]:
    from semanticsplat_ros.teachers.prompts import PLAIN_TEMPLATES, QUERY_TEMPLATES

    return PLAIN_TEMPLATES if args.prompt_templates == "plain" else QUERY_TEMPLATES


def _vocabulary(args: argparse.Namespace):
    from semanticsplat_ros.teachers.vocabulary import DEFAULT_VOCABULARY, load_vocabulary

    return load_vocabulary(args.vocabulary_file or DEFAULT_VOCABULARY)


def _teacher_language(args: argparse.Namespace):
    """With --teachers: the tiny LSeg ``--language`` names (tiny_lseg[:PATH]), else None (the
    shipped one)."""
    if args.language is None:
        return None
    from semanticsplat_ros.teachers.lseg import LanguageTeacher
    from semanticsplat_ros.teachers.spec import load_language_teacher

    teacher = load_language_teacher(args.language).teacher
    if not isinstance(teacher, LanguageTeacher):
        raise ValueError(
            f"--teachers evaluates a tiny_lseg[:PATH] language teacher, not {args.language!r}"
        )
    return teacher


def _model_unseen_words(args, results, path, seeds, sam, loaded, device, templates) -> int:
    """--unseen-words for the model (``path``): the language protocol on the target views once
    per query set of ``unseen_prompt_sets`` (names, K train draws, K unseen draws)."""
    from semanticsplat_ros.eval.protocols import ProtocolSettings, evaluate_model
    from semanticsplat_ros.eval.teachers import (
        class_queries,
        summarise_prompt_sets,
        unseen_prompt_sets,
    )
    from semanticsplat_ros.model.semanticsplat import load_model, trained_near
    from semanticsplat_ros.teachers.prompts import embed_prompts, unseen_words_in_text_space

    model, meta = load_model(path, map_location=device)
    trained = meta.get("train_config", {}) if isinstance(meta, dict) else {}
    h = args.height or int(trained.get("height", 64))
    w = args.width or int(trained.get("width", 64))
    dataset = _dataset(args, seeds, h, w, trained_near(meta))
    sets = unseen_prompt_sets(_vocabulary(args), args.unseen_picks)
    mious: dict[str, list[float]] = {g: [] for g in sets}
    for group, prompt_sets in sets.items():
        for prompts in prompt_sets:
            text = embed_prompts(loaded.text_encoder, class_queries(prompts), templates)
            row = evaluate_model(
                model, dataset, sam, loaded.teacher, text.to(device),
                ProtocolSettings(grid=args.grid, protocols=("language",)),
                with_teacher=False, device=device, progress=False, desc="eval unseen words",
            )  # fmt: skip
            mious[group].append(float(_get(row, "language.target.ours.miou") or 0.0))
    results["checkpoint"] = str(path)
    results["resolution"] = [h, w]
    summary = summarise_prompt_sets(sets, mious)
    summary["text_space"] = unseen_words_in_text_space(
        loaded.text_encoder, _vocabulary(args), templates
    )
    results["unseen_words"] = {**summary, "templates": list(templates), "of": "model"}
    results["seconds"] = time.perf_counter() - results["seconds"]
    _emit(results, args.json, "")
    return 0


def _teacher_specs(args: argparse.Namespace, meta: dict):
    """The teachers to evaluate with: ``--sam`` / ``--language``, else those the checkpoint
    (whose ``meta`` this is) records; the tiny pair for a model distilled from none."""
    from semanticsplat_ros.teachers.spec import (
        TINY_LSEG,
        TINY_SAM,
        LanguageSpec,
        SamSpec,
        recorded_teachers,
        specs_from_checkpoint_dict,
    )

    recorded = recorded_teachers(meta)
    sam, language = (SamSpec.parse(TINY_SAM), LanguageSpec.parse(TINY_LSEG))
    if recorded is not None:
        sam, language = specs_from_checkpoint_dict(recorded)
    if args.sam is not None:
        sam = SamSpec.parse(args.sam)
    if args.language is not None:
        language = LanguageSpec.parse(args.language)
    return sam, language


def _per_scene(args: argparse.Namespace, default: int) -> int:
    return default if args.examples_per_scene is None else args.examples_per_scene


def _dataset(args: argparse.Namespace, seeds: range, h: int, w: int, near: float | None = None):
    """The examples to evaluate: ScanNet-layout scenes under ``--data`` (at their own near
    plane), else synthetic ``seeds`` with the near plane ``near`` (the model's)."""
    if args.data is not None:
        from semanticsplat_ros.data.scannet import ScanNetDataset

        return ScanNetDataset(
            args.data, h, w, num_context=args.num_context, num_target=args.num_target,
            examples_per_scene=_per_scene(args, 4), skip_invalid_poses=True,
        )  # fmt: skip
    from semanticsplat_ros.data.synthetic import SyntheticDataset

    return SyntheticDataset(
        seeds, height=h, width=w, num_context=args.num_context, num_target=args.num_target,
        sampling=_sampling(args.context_span, args.rig, args.style), near=near,
        examples_per_scene=_per_scene(args, 1),
    )  # fmt: skip


def _baseline_scenes(args: argparse.Namespace, seeds: range) -> range:
    """The first ``--baseline-scenes`` of ``seeds``: the scenes the per-scene baseline gets."""
    return range(seeds.start, min(seeds.stop, seeds.start + args.baseline_scenes))


def _run_baseline(
    args, ours: dict, sam, lang, class_embeddings, seeds, device, progress, near=None
) -> dict:
    """The per-scene baseline on the first scenes, with 100× our feed-forward time each, at our
    model's near plane ``near``; compared with ours on the same scenes."""
    from semanticsplat_ros.eval.baseline import evaluate_baseline, time_to_match

    ours_s = float(ours["feedforward_s"])
    budget = args.baseline_factor * ours_s
    h, w = ours["resolution"]
    scenes = _baseline_scenes(args, seeds)
    dataset = _dataset(args, scenes, h, w, near)
    result = evaluate_baseline(
        dataset, sam, lang, class_embeddings.to(device), budget, progress=progress
    )
    # Ours on the same scenes as the baseline (all of --seeds when it ran on all of them).
    same = ours.get("on_baseline_scenes", ours)
    ours_psnr = _get(same, "nvs.psnr")
    ours_miou = _get(same, "language.target.ours.miou")
    result["ours_psnr"], result["ours_language_target_miou"] = ours_psnr, ours_miou
    result["ours_feedforward_s"] = ours_s
    result["factor"] = args.baseline_factor
    for key, target, name in (
        ("psnr", ours_psnr, "psnr"),
        ("language_target_miou", ours_miou, "language_target_miou"),
    ):
        t = time_to_match(result["curve"], key, target) if target is not None else None
        result[f"time_ratio_to_equal_{name}"] = None if t is None else t / ours_s
    return result


def unseen_words_table(u: dict) -> str:
    """Markdown: mIoU with class names, train-vocabulary and unseen words, and the ratio."""
    k = len(u["picks"]["unseen"])
    lines = [
        f"Unseen words ({u.get('of', 'model')}, language protocol, mean over {k} random draws per group)",
        "",
        "| queries | mIoU |",
        "|---|---|",
        f"| class names | {_fmt(u['names'])} |",
        f"| train vocabulary (one text per class) | {_fmt(u.get('train'))} |",
        f"| unseen words (one per class) | {_fmt(u['unseen'])} |",
        f"| ratio unseen / names | {_fmt(u.get('ratio'))} |",
        "",
    ]
    if "text_space" in u:
        t = u["text_space"]
        lines += [
            "Text encoder alone: unseen words nearest their own class name "
            f"{100 * t['names']:.0f}%, nearest their class's vocabulary centroid "
            f"{100 * t['vocabulary']:.0f}%",
            "",
        ]
    return "\n".join(lines)


def _emit(results: dict, path: Path | None, tables: str) -> None:
    if tables:
        print(tables)
    if "baseline" in results:
        b = results["baseline"]
        print(
            f"Per-scene optimisation baseline (Feature 3DGS-style), {b['num_examples']} scenes, "
            f"budget {b['budget_s']:.1f} s = {b['factor']:.0f}× our {b['ours_feedforward_s']:.3f} s\n"
        )
        print(
            "| budget used | seconds | steps | PSNR | target language mIoU |\n|---|---|---|---|---|"
        )
        print(
            f"| ours (feed-forward, same scenes) | {b['ours_feedforward_s']:.2f} | — "
            f"| {_fmt(b.get('ours_psnr'), 2)} | {_fmt(b.get('ours_language_target_miou'))} |"
        )
        for p in b["curve"]:
            print(
                f"| {p['fraction']:.0%} | {p['seconds']:.1f} | {p['steps']:.0f} "
                f"| {_fmt(p['psnr'], 2)} | {_fmt(p['language_target_miou'])} |"
            )
        for key in ("psnr", "language_target_miou"):
            ratio = b[f"time_ratio_to_equal_{key}"]
            said = "not reached within the budget" if ratio is None else f"{ratio:.0f}× our time"
            print(f"\ntime to equal our {key}: {said}")
        print()
    if "unseen_words" in results:
        print(unseen_words_table(results["unseen_words"]))
    if "teachers" in results:
        t = results["teachers"]
        print("Teachers (2D, per view)\n")
        print("| teacher | mIoU | Acc |\n|---|---|---|")
        if "sam" in t:
            print(f"| tiny SAM, 32×32 point grid, best of 3 | {_fmt(t['sam']['miou'])} | n/a |")
        if "lseg" in t:
            print(
                f"| tiny LSeg, {len(CLASS_NAMES)} classes | {_fmt(t['lseg']['miou'])} "
                f"| {_fmt(t['lseg'].get('acc'))} |"
            )
        if "lseg_hcam" in t:
            print(
                f"| tiny LSeg after HCAM pooling in tiny SAM's masks (stage-2 target with HCAM) "
                f"| {_fmt(t['lseg_hcam']['miou'])} | {_fmt(t['lseg_hcam']['acc'])} |"
            )
        print()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {path}", file=sys.stderr)
