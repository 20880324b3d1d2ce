"""PLY export: round trip of every attribute, the 3DGS layout, and errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest

from semanticsplat_ros.ply import SH_C0, PlyGaussians, read_ply, write_ply


def make(n: int = 50, seg: int = 4, lang: int = 3, labels: bool = True) -> PlyGaussians:
    rng = np.random.default_rng(0)
    q = rng.normal(size=(n, 4)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return PlyGaussians(
        means=rng.normal(size=(n, 3)).astype(np.float32),
        quats=q,
        scales=rng.uniform(0.001, 0.1, size=(n, 3)).astype(np.float32),
        opacities=rng.uniform(0.05, 0.95, size=n).astype(np.float32),
        colors=rng.uniform(0, 1, size=(n, 3)).astype(np.float32),
        seg_features=rng.normal(size=(n, seg)).astype(np.float32),
        lang_features=rng.normal(size=(n, lang)).astype(np.float32),
        labels=rng.integers(0, 8, size=n) if labels else None,
        scores=rng.uniform(0, 1, size=n).astype(np.float32) if labels else None,
    )


@pytest.mark.parametrize(("seg", "lang", "labels"), [(4, 3, True), (0, 0, False), (16, 8, False)])
def test_round_trip(tmp_path, seg, lang, labels):
    g = make(seg=seg, lang=lang, labels=labels)
    path = write_ply(tmp_path / "g.ply", g)
    back = read_ply(path)
    for name in ("means", "quats", "colors", "seg_features", "lang_features"):
        np.testing.assert_allclose(getattr(back, name), getattr(g, name), atol=1e-5, err_msg=name)
    np.testing.assert_allclose(back.scales, g.scales, rtol=1e-5)
    np.testing.assert_allclose(back.opacities, g.opacities, atol=1e-5)
    if labels:
        np.testing.assert_array_equal(back.labels, g.labels)
        np.testing.assert_allclose(back.scores, g.scores, atol=1e-6)
    else:
        assert back.labels is None


def test_header_has_the_3dgs_layout(tmp_path):
    g = make(n=3, seg=2, lang=1)
    raw = write_ply(tmp_path / "g.ply", g).read_bytes()
    header = raw[: raw.index(b"end_header")].decode().splitlines()
    props = [line.split()[-1] for line in header if line.startswith("property")]
    assert props[:17] == [
        "x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
        "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3",
    ]  # fmt: skip
    assert props[17:] == ["f_seg_0", "f_seg_1", "f_lang_0", "label", "score"]
    body = np.frombuffer(raw[raw.index(b"end_header\n") + 11 :], dtype="<f4").reshape(3, -1)
    # Colour is stored as degree-0 SH, opacity as a logit, scale as a log.
    np.testing.assert_allclose(body[:, 6] * SH_C0 + 0.5, g.colors[:, 0], atol=1e-6)
    np.testing.assert_allclose(np.exp(body[:, 10]), g.scales[:, 0], rtol=1e-6)


def test_bad_input(tmp_path):
    g = make(n=5)
    g.scales[0, 0] = -1
    with pytest.raises(ValueError, match="scales"):
        write_ply(tmp_path / "x.ply", g)
    g = make(n=5)
    g.means[1, 1] = np.nan
    with pytest.raises(ValueError, match="means"):
        write_ply(tmp_path / "x.ply", g)
    with pytest.raises(FileNotFoundError, match=r"missing\.ply"):
        read_ply(tmp_path / "missing.ply")
    (tmp_path / "junk.ply").write_bytes(b"hello")
    with pytest.raises(ValueError, match="not a PLY"):
        read_ply(tmp_path / "junk.ply")
    path = write_ply(tmp_path / "t.ply", make(n=5))
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(ValueError, match="truncated"):
        read_ply(path)
