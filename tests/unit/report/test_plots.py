"""The report's plots: one colour per method, learning rate as marker, error bars cut to 0–100%,
one NLL bar per method."""

from __future__ import annotations

from mixsd.report import plots


def _run(method: str, lr: float, seed: int, **fields):
    return {"name": f"{method} lr={lr:g} seed={seed}", "method": method, "lr": lr,
            "seed": seed, **fields}


def test_style_colours_methods_and_marks_learning_rates():
    runs = [_run(m, lr, 0) for m in ("sft", "mixsd:0.5") for lr in (1e-3, 3e-3)]
    style = plots.Style.of(runs)
    assert style.methods == ("sft", "mixsd:0.5") and style.lrs == ("0.001", "0.003")
    assert style.color(runs[0]) == style.color(runs[1]) != style.color(runs[2])
    assert style.marker(runs[0]) == style.marker(runs[2]) != style.marker(runs[1])


def test_error_bars_stay_inside_0_and_100():
    assert plots._bar(95.0, 10.0, 100.0) == [[10.0], [5.0]]
    assert plots._bar(3.0, 10.0, 100.0) == [[3.0], [10.0]]
    assert plots._bar(50.0, None, 100.0) is None
    assert plots._bar(103.0, 2.0, 100.0) == [[2.0], [0.0]]  # a point above stays where it is


def test_nll_is_one_bar_per_method(tmp_path, monkeypatch):
    runs = [_run("sft", lr, s, target_nll=1.0 + s) for lr in (1e-3, 3e-3) for s in (0, 1)]
    runs += [_run("opsd", 1e-3, 0)]
    assert plots._method_values(runs, "target_nll") == {"sft": 1.5}
    bars = []
    monkeypatch.setattr("matplotlib.axes.Axes.bar", lambda ax, x, h, **kw: bars.append(h))
    assert plots.nll_plot(runs, tmp_path / "nll.png", {"y*": 0.5}) is not None
    assert bars == [[1.5, 0.5]]


def test_epochs_plot_writes_with_many_runs(tmp_path):
    epochs = [{"epoch": e, "memorization": e / 4, "retention_mean": 90 - e} for e in (1, 2, 3)]
    runs = [_run(m, lr, s, epochs=epochs, selected_epoch=2)
            for m in ("sft", "sd0", "mixsd:0.3") for lr in (1e-3, 3e-3, 1e-2) for s in (0, 1, 2)]
    assert plots.epochs_plot(runs, tmp_path / "epochs.png").stat().st_size > 0
