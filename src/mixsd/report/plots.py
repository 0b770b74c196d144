"""PNG plots of a report (matplotlib, Agg backend): frontier, per-epoch curves, NLL, Fisher."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mixsd.report.tables import label


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
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


MARKERS = ("o", "s", "^", "D", "v", "P")


def _method_and_lr(key: str) -> tuple[str, str]:
    method, sep, lr = key.partition(" lr=")
    return method, (lr.split(" ")[0] if sep else "")


def frontier_plot(runs: Sequence[dict[str, Any]], bases: Sequence[tuple[str, dict[str, Any]]],
                  path: Path) -> Path:
    """Memorisation (x) against mean retention (y): every seed's epochs as a faint trajectory
    with a faint dot at its selected epoch; the seed mean of the selected epochs as a strong
    point with ± sd bars. Colour = method, marker = learning rate; the base model is a star
    at 100% retention."""
    from mixsd.evaluation.results import mean_spread

    plt = _pyplot()
    groups = _groups(runs)
    methods = list(dict.fromkeys(_method_and_lr(k)[0] for k in groups))
    lrs = list(dict.fromkeys(_method_and_lr(k)[1] for k in groups))
    cmap = plt.get_cmap("tab10" if len(methods) <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for key, members in groups.items():
        method, lr = _method_and_lr(key)
        color = cmap(methods.index(method) % cmap.N)
        marker = MARKERS[lrs.index(lr) % len(MARKERS)]
        for run in members:
            pts = [(e.get("memorization"), e.get("retention_mean")) for e in run.get("epochs", [])]
            pts = [(100 * m, r) for m, r in pts if m is not None and r is not None]
            if len(pts) > 1:
                ax.plot(*zip(*pts), color=color, alpha=0.25, linewidth=0.8)
            if run.get("memorization") is not None and run.get("retention_mean") is not None:
                ax.scatter([100 * run["memorization"]], [run["retention_mean"]], color=color,
                           alpha=0.4, s=16, marker=marker, linewidths=0)
        x, xsd, _ = mean_spread([r.get("memorization") for r in members])
        y, ysd, _ = mean_spread([r.get("retention_mean") for r in members])
        if x is not None and y is not None:
            ax.errorbar([100 * x], [y], xerr=None if xsd is None else [100 * xsd],
                        yerr=None if ysd is None else [ysd], color=color, marker=marker,
                        markersize=8, markeredgecolor="black", capsize=3, linewidth=1.5,
                        label=key, zorder=3)
    for src, base in bases:
        mem = base.get("memorization")
        ax.scatter([100 * (mem or 0.0)], [100.0], marker="*", s=220, color="black", zorder=4,
                   label=f"base model{' ' + src if src else ''}")
    ax.axhline(100.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel("memorisation: training questions answered (%)")
    ax.set_ylabel("retention: mean % of the base model's score")
    n_seeds = max((len(m) for m in groups.values()), default=1)
    ax.set_title("Memorisation–retention frontier at the first peak"
                 + (f" (strong: mean of {n_seeds} seeds ± sd; faint: each seed, every epoch)"
                    if n_seeds > 1 else " (faint: every epoch)"), fontsize=9)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def epochs_plot(runs: Sequence[dict[str, Any]], path: Path) -> Path:
    """Memorisation, paraphrase and mean retention per epoch; the selected epoch circled."""
    plt = _pyplot()
    panels = [("memorization", "memorisation %", 100.0), ("paraphrase", "paraphrase %", 100.0),
              ("retention_mean", "retention mean %", 1.0), ("drift_kl", "drift KL (nats)", 1.0)]
    panels = [p for p in panels if any(e.get(p[0]) is not None
                                       for r in runs for e in r.get("epochs", []))]
    panels = panels or [("memorization", "memorisation %", 100.0)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    for ax, (key, title, scale) in zip(axes[0], panels):
        for i, run in enumerate(runs):
            pts = [(e["epoch"], scale * e[key]) for e in run.get("epochs", [])
                   if e.get(key) is not None]
            if not pts:
                continue
            ax.plot(*zip(*pts), marker="o", markersize=3, color=f"C{i % 10}", label=label(run))
            chosen = [p for p in pts if p[0] == run.get("selected_epoch")]
            if chosen:
                ax.scatter(*zip(*chosen), s=90, facecolors="none", edgecolors=f"C{i % 10}")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=6)
    return _save(fig, path)


def nll_plot(runs: Sequence[dict[str, Any]], path: Path,
             extra: dict[str, float] | None = None) -> Path | None:
    """Bars of mean per-token target NLL under the base model, per method/λ (seed mean)."""
    values = {k: _mean([r.get("target_nll") for r in members])
              for k, members in _groups(runs).items()}
    values.update(extra or {})
    values = {k: v for k, v in values.items() if v is not None}
    if not values:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(values) + 2), 4))
    ax.bar(range(len(values)), list(values.values()),
           color=[f"C{i % 10}" for i in range(len(values))])
    ax.set_xticks(range(len(values)), list(values), rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("mean NLL per token (nats)")
    ax.set_title("Target NLL under the base model given the naive prompt")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def fisher_plot(runs: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """Fisher-weighted displacement: total per method/λ (log scale) and per layer group."""
    groups = {k: [r["fisher"] for r in members if r.get("fisher")]
              for k, members in _groups(runs).items()}
    groups = {k: v for k, v in groups.items() if v}
    if not groups:
        return None
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    totals = [_mean([f.get("total") for f in fs]) or 0.0 for fs in groups.values()]
    ax1.bar(range(len(groups)), totals, color=[f"C{i % 10}" for i in range(len(groups))])
    ax1.set_xticks(range(len(groups)), list(groups), rotation=30, ha="right", fontsize=8)
    if all(t > 0 for t in totals) and max(totals) / min(totals) > 50:
        ax1.set_yscale("log")
    ax1.set_title("sum_i F_i (θ_i − θ0_i)²  (total)")
    ax1.grid(axis="y", alpha=0.3)
    for i, (key, fs) in enumerate(groups.items()):
        layers = list(fs[0].get("per_layer", {}))
        vals = [_mean([f.get("per_layer", {}).get(g) for f in fs]) or 0.0 for g in layers]
        if layers:
            ax2.plot(range(len(layers)), vals, marker="o", markersize=3, color=f"C{i % 10}",
                     label=key)
            ax2.set_xticks(range(len(layers)), layers, rotation=45, ha="right", fontsize=7)
    ax2.set_title("per layer group")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=6)
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
    axes[0][0].legend(fontsize=7)
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
    axes[0][-1].legend(fontsize=7)
    axes[1][-1].legend(fontsize=7)
    return _save(fig, path)
