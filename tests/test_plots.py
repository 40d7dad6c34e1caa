"""The figures of ``seqlab.plots`` are written atomically: a failure while drawing leaves the file the user named
as it was and no temporary file beside it; a finished figure is a whole PNG; a symlink is followed."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from seqlab import plots

PNG = b"\x89PNG\r\n\x1a\n"


def draw_fan(path):
    rng = np.random.default_rng(0)
    plots.fan_chart(np.cumsum(rng.normal(size=30)), rng.normal(size=(50, 5)), path, "a forecast")


def test_a_figure_is_a_whole_png_under_the_name_given(tmp_path):
    draw_fan(tmp_path / "fan.png")
    draw_fan(tmp_path / "no-suffix")  # PNG, whatever the temporary file is called
    for name in ("fan.png", "no-suffix"):
        assert (tmp_path / name).read_bytes().startswith(PNG)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fan.png", "no-suffix"]


def test_a_failure_while_drawing_keeps_the_old_file(tmp_path, monkeypatch):
    """Half a PNG is written, then the drawing fails (a full disk, a kill): the earlier figure stays whole."""
    path = tmp_path / "fan.png"
    path.write_bytes(b"the earlier figure")

    def half_then_fail(fig, target, **kwargs):
        with open(target, "wb") as f:
            f.write(PNG)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", half_then_fail)
    with pytest.raises(OSError, match="No space left on device"):
        draw_fan(path)
    assert path.read_bytes() == b"the earlier figure"
    assert [p.name for p in tmp_path.iterdir()] == ["fan.png"]


def test_a_symlink_is_followed_and_kept(tmp_path):
    target = tmp_path / "real.png"
    target.write_bytes(b"old")
    link = tmp_path / "link.png"
    link.symlink_to(target)
    plots.backtest_chart([{"model": "a", "crps": 1.0, "coverage_80": 0.8}], link, "t")
    assert link.is_symlink() and target.read_bytes().startswith(PNG)
