"""PNG plots of a report (matplotlib, Agg backend): frontier, per-epoch curves, NLL, Fisher.

Every plot of runs draws a method in one colour and a learning rate as one marker
(:class:`Style`), and keeps its legends outside the axes so no curve is hidden."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # "tight" keeps the outside legends
    _pyplot().close(fig)
    return path


def group_key(run: dict[str, Any]) -> str:
    """Runs that differ only in seed share a point: their name without the seed
    (``mixsd:0.5@toy-own lr=0.001``), tagged with their source when results are combined."""
    from mixsd.evaluation.results import group_name

    name = group_name(run)
    return f"{run['_source']}/{name}" if run.get("_source") else name


def _groups(runs: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(group_key(run), []).append(run)
    return groups


def _mean(values: Sequence[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def method_and_lr(key: str) -> tuple[str, str]:
    """A group key split into its method (with source) and its learning rate (``""`` when
    the name has none, e.g. a MEMIT edit)."""
    method, sep, lr = key.partition(" lr=")
    return method, (lr.split(" ")[0] if sep else "")


@dataclass(frozen=True)
class Style:
    """One colour per method and one marker per learning rate, in order of appearance."""

    methods: tuple[str, ...]
    lrs: tuple[str, ...]
    colors: tuple[Any, ...]

    @classmethod
    def of(cls, runs: Sequence[dict[str, Any]]) -> Style:
        keys = [method_and_lr(group_key(r)) for r in runs]
        methods = tuple(dict.fromkeys(m for m, _ in keys))
        lrs = tuple(dict.fromkeys(lr for _, lr in keys))
        cmap = _pyplot().get_cmap("tab10" if len(methods) <= 10 else "tab20")
        return cls(methods, lrs, tuple(cmap(i % cmap.N) for i in range(len(methods))))

    def color(self, run_or_key: dict[str, Any] | str) -> Any:
        key = run_or_key if isinstance(run_or_key, str) else group_key(run_or_key)
        return self.colors[self.methods.index(method_and_lr(key)[0])]

    def marker(self, run_or_key: dict[str, Any] | str) -> str:
        key = run_or_key if isinstance(run_or_key, str) else group_key(run_or_key)
        return MARKERS[self.lrs.index(method_and_lr(key)[1]) % len(MARKERS)]

    def legend(self, ax: Any, extra: Sequence[Any] = (), anchor: float = 1.0) -> None:
        """The method colours and learning-rate markers as one legend right of ``ax``."""
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=c, linewidth=2.5, label=m)
                   for m, c in zip(self.methods, self.colors)]
        if any(self.lrs):
            handles += [Line2D([], [], color="none", label="learning rate:")]
            handles += [Line2D([], [], color="grey", marker=MARKERS[i % len(MARKERS)],
                               linestyle="none", label=f"lr={lr}" if lr else "no lr")
                        for i, lr in enumerate(self.lrs)]
        ax.legend(handles=[*extra, *handles], fontsize=7, loc="upper left",
                  bbox_to_anchor=(1.02, anchor), frameon=False, borderaxespad=0)


def _bar(value: float | None, sd: float | None, top: float) -> list[list[float]] | None:
    """An asymmetric ± sd error bar cut to [0, top] (a percentage cannot pass 100 or fall
    below 0; a point above ``top`` keeps its own value as the bound)."""
    if value is None or sd is None:
        return None
    top = max(top, value)
    return [[min(sd, max(value, 0.0))], [min(sd, top - value)]]


def _trajectories(ax: Any, members: Sequence[dict[str, Any]], color: Any, marker: str) -> None:
    """Each seed's epochs as a faint line, with a faint dot at its selected epoch."""
    for run in members:
        pts = [(e.get("memorization"), e.get("retention_mean")) for e in run.get("epochs", [])]
        pts = [(100 * m, r) for m, r in pts if m is not None and r is not None]
        if len(pts) > 1:
            ax.plot(*zip(*pts), color=color, alpha=0.25, linewidth=0.8)
        if run.get("memorization") is not None and run.get("retention_mean") is not None:
            ax.scatter([100 * run["memorization"]], [run["retention_mean"]], color=color,
                       alpha=0.4, s=16, marker=marker, linewidths=0)


def frontier_plot(runs: Sequence[dict[str, Any]], bases: Sequence[tuple[str, dict[str, Any]]],
                  path: Path) -> Path:
    """Memorisation (x) against mean retention (y): every seed's epochs as a faint trajectory
    with a faint dot at its selected epoch; the seed mean of the selected epochs as a strong
    point with ± sd bars (cut to 0–100%). Colour = method, marker = learning rate; the base
    model is a star at 100% retention."""
    from matplotlib.lines import Line2D

    from mixsd.evaluation.results import mean_spread

    plt = _pyplot()
    groups, style = _groups(runs), Style.of(runs)
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for key, members in groups.items():
        color, marker = style.color(key), style.marker(key)
        _trajectories(ax, members, color, marker)
        x, xsd, _ = mean_spread([r.get("memorization") for r in members])
        y, ysd, _ = mean_spread([r.get("retention_mean") for r in members])
        if x is not None and y is not None:
            ax.errorbar([100 * x], [y], xerr=_bar(100 * x, None if xsd is None else 100 * xsd,
                                                  100.0),
                        yerr=_bar(y, ysd, 100.0), color=color, marker=marker, markersize=8,
                        markeredgecolor="black", capsize=3, linewidth=1.5, zorder=3)
    for _, base in bases:
        mem = base.get("memorization")
        ax.scatter([100 * (mem or 0.0)], [100.0], marker="*", s=220, color="black", zorder=4)
    ax.axhline(100.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel("memorisation: training questions answered (%)")
    ax.set_ylabel("retention: mean % of the base model's score")
    n_seeds = max((len(m) for m in groups.values()), default=1)
    ax.set_title("Memorisation–retention frontier at the first peak"
                 + (f" (strong: mean of {n_seeds} seeds ± sd; faint: each seed, every epoch)"
                    if n_seeds > 1 else " (faint: every epoch)"), fontsize=9)
    names = ", ".join(src for src, _ in bases if src)
    star = Line2D([], [], marker="*", markersize=12, color="black", linestyle="none",
                  label="base model" + (f" ({names})" if names else ""))
    style.legend(ax, extra=[star])
    ax.grid(alpha=0.3)
    return _save(fig, path)


EPOCH_PANELS = (("memorization", "memorisation %", 100.0), ("paraphrase", "paraphrase %", 100.0),
                ("retention_mean", "retention mean %", 1.0), ("drift_kl", "drift KL (nats)", 1.0))


def epochs_plot(runs: Sequence[dict[str, Any]], path: Path) -> Path:
    """Memorisation, paraphrase, mean retention and drift per epoch, one line per run
    (colour = method, marker = learning rate); the selected epoch circled."""
    plt = _pyplot()
    panels = [p for p in EPOCH_PANELS if any(e.get(p[0]) is not None
                                             for r in runs for e in r.get("epochs", []))]
    panels = panels or [EPOCH_PANELS[0]]
    style = Style.of(runs)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    for ax, (key, title, scale) in zip(axes[0], panels):
        for run in runs:
            pts = [(e["epoch"], scale * e[key]) for e in run.get("epochs", [])
                   if e.get(key) is not None]
            if not pts:
                continue
            color = style.color(run)
            ax.plot(*zip(*pts), marker=style.marker(run), markersize=4, color=color,
                    linewidth=1.1, alpha=0.85)
            chosen = [p for p in pts if p[0] == run.get("selected_epoch")]
            if chosen:
                ax.scatter(*zip(*chosen), s=110, facecolors="none", edgecolors=color)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    style.legend(axes[0][-1])
    return _save(fig, path)


def _method_values(runs: Sequence[dict[str, Any]], field: str) -> dict[str, float]:
    """The mean of a run field per method (seeds and learning rates together)."""
    by_method: dict[str, list[Any]] = {}
    for run in runs:
        by_method.setdefault(method_and_lr(group_key(run))[0], []).append(run.get(field))
    values = {m: _mean(vs) for m, vs in by_method.items()}
    return {m: v for m, v in values.items() if v is not None}


def nll_plot(runs: Sequence[dict[str, Any]], path: Path,
             extra: dict[str, float] | None = None) -> Path | None:
    """Bars of mean per-token target NLL under the base model, one per method (seed mean):
    a method's targets do not depend on the learning rate it is trained at."""
    style = Style.of(runs)
    values = _method_values(runs, "target_nll")
    colors = [style.colors[style.methods.index(m)] for m in values]
    for name, value in (extra or {}).items():
        if value is not None:
            values[name] = value
            colors.append("grey")
    if not values:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(values) + 2), 4))
    ax.bar(range(len(values)), list(values.values()), color=colors)
    ax.set_xticks(range(len(values)), list(values), rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("mean NLL per token (nats)")
    ax.set_title("Target NLL under the base model given the naive prompt")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def fisher_plot(runs: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """Fisher-weighted displacement: total per method and learning rate (log scale) and per
    layer group; colour = method, marker = learning rate."""
    groups = {k: [r["fisher"] for r in members if r.get("fisher")]
              for k, members in _groups(runs).items()}
    groups = {k: v for k, v in groups.items() if v}
    if not groups:
        return None
    style = Style.of(runs)
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    totals = [_mean([f.get("total") for f in fs]) or 0.0 for fs in groups.values()]
    ax1.bar(range(len(groups)), totals, color=[style.color(k) for k in groups])
    ax1.set_xticks(range(len(groups)), list(groups), rotation=30, ha="right", fontsize=8)
    if all(t > 0 for t in totals) and max(totals) / min(totals) > 50:
        ax1.set_yscale("log")
    ax1.set_title("sum_i F_i (θ_i − θ0_i)²  (total)")
    ax1.grid(axis="y", alpha=0.3)
    for key, fs in groups.items():
        layers = list(fs[0].get("per_layer", {}))
        vals = [_mean([f.get("per_layer", {}).get(g) for f in fs]) or 0.0 for g in layers]
        if layers:
            ax2.plot(range(len(layers)), vals, marker=style.marker(key), markersize=4,
                     color=style.color(key))
            ax2.set_xticks(range(len(layers)), layers, rotation=45, ha="right", fontsize=7)
    ax2.set_title("per layer group")
    ax2.grid(alpha=0.3)
    style.legend(ax2)
    return _save(fig, path)


def rounds_plot(results: dict[str, Any], path: Path) -> Path:
    """One panel per method: after each round (x), memorisation of each round's facts (one
    line per round, from the round it was injected on) and mean retention (black, dashed);
    seed means."""
    from mixsd.evaluation.results import mean_spread

    rounds = results["rounds"]
    entries = rounds["entries"]
    n = int(rounds.get("n") or max(e["round"] for e in entries))
    groups = list(dict.fromkeys(e["group"] for e in entries))
    plt = _pyplot()
    cols = min(4, len(groups))
    rows = -(-len(groups) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.2 * rows), squeeze=False,
                             sharey=True)
    for ax, group in zip(axes.flat, groups):
        mine = [e for e in entries if e["group"] == group]
        for k in range(1, n + 1):
            pts = []
            for r in range(k, n + 1):
                mean, _, _ = mean_spread([e["memorization"].get(str(k)) for e in mine
                                          if e["round"] == r])
                if mean is not None:
                    pts.append((r, 100 * mean))
            if pts:
                ax.plot(*zip(*pts), marker="o", color=f"C{k - 1}", label=f"round {k} facts")
        ret = [(r, mean_spread([e.get("retention_mean") for e in mine if e["round"] == r])[0])
               for r in range(1, n + 1)]
        ret = [(r, v) for r, v in ret if v is not None]
        if ret:
            ax.plot(*zip(*ret), color="black", linestyle="--", marker="s", label="retention")
        ax.set_title(group, fontsize=9)
        ax.set_xlabel("after round")
        ax.set_xticks(range(1, n + 1))
        ax.set_ylim(-3, 105)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    axes[0][0].set_ylabel("%")
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    return _save(fig, path)


def inject_plot(summary: dict[str, Any], path: Path) -> Path:
    """``mixsd inject``'s per-epoch curve, one column per try: memorisation and paraphrase
    recall of the facts (top, the base model's memorisation grey) and each probe's retention
    with the budget line (bottom); the shipped epoch circled."""
    plt = _pyplot()
    tries = summary["tries"]
    last = max(int(r["epoch"]) for t in tries for r in t["epochs"])
    fig, axes = plt.subplots(2, len(tries), figsize=(4.2 * len(tries) + 1.5, 6.4),
                             squeeze=False, sharey="row")
    chosen, base = summary["selected"], summary["base"].get("memorization")
    for column, attempt in enumerate(tries):
        top, bottom, rows = axes[0][column], axes[1][column], attempt["epochs"]
        for key, name, color in (("memorization", "memorisation", "C0"),
                                 ("paraphrase", "paraphrase", "C1")):
            pts = [(r["epoch"], 100 * r[key]) for r in rows if r.get(key) is not None]
            if pts:
                top.plot(*zip(*pts), marker="o", markersize=4, color=color, label=name)
        if base is not None:
            top.axhline(100 * base, color="grey", linewidth=0.8, label="base memorisation")
        for p, probe in enumerate(summary["probes"]):
            pts = [(r["epoch"], r[f"retained/{probe}"]) for r in rows
                   if r.get(f"retained/{probe}") is not None]
            if pts:
                bottom.plot(*zip(*pts), marker="o", markersize=4, color=f"C{(p + 2) % 10}",
                            label=probe)
        bottom.axhline(100 * summary["retain"], color="red", linewidth=1,
                       label=f"budget {100 * summary['retain']:g}%")
        if attempt["try"] == chosen["try"]:
            row = next(r for r in rows if r["epoch"] == chosen["epoch"])
            if row.get("memorization") is not None:
                top.scatter([row["epoch"]], [100 * row["memorization"]], s=140,
                            facecolors="none", edgecolors="k", label="shipped epoch")
        top.set_title(f"try {attempt['try']}: lr {attempt['lr']:g}")
        for ax in (top, bottom):
            ax.set_xlim(0.5, last + 0.5)
            ax.set_xticks(range(1, last + 1))
            ax.grid(alpha=0.3)
        bottom.set_xlabel("epoch")
    axes[0][0].set_ylabel("the facts (%)")
    axes[1][0].set_ylabel("probe retained (% of base)")
    for ax in (axes[0][-1], axes[1][-1]):
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    return _save(fig, path)
