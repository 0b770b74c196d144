"""Write the report of one or more experiments: Markdown and a self-contained HTML page
(plots embedded) with the memorisation–retention frontier (one point per method and lambda,
the base model marked), metrics per epoch, target NLL and Fisher displacement bars, and tables
(base scores, runs at their selected epoch, retention at equal memorisation, error buckets,
per-epoch metrics). Each RUN_DIR holds a results.json (as written by `mixsd compare`).

Example:
  mixsd report runs/demo --out runs/demo/report
  mixsd report runs/qwen-lr1e-5 runs/qwen-lr3e-5 --out reports/qwen
  mixsd report runs/demo --out docs/demo --readme README.md   # regenerate README's results
  mixsd report docs/real --out docs/real --readme README.md --section real
  mixsd report docs/inject/toy --out docs/inject/toy --readme README.md --section inject
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mixsd.report.config import ReportConfig

    ReportConfig.add_arguments(parser)


def run(args: argparse.Namespace) -> str:
    from mixsd.report import write_report
    from mixsd.report.config import ReportConfig

    config = ReportConfig.from_args(args)
    html = write_report(config.results, config.out)
    lines = [f"report: {html}"]
    if html.suffix == ".html":  # an injection's folder gets report.md alone
        lines.append(f"markdown: {html.with_name('report.md')}")
    if config.readme:
        from mixsd.report.readme import update_readme

        command = (f"mixsd report {' '.join(config.results)} --out {config.out} "
                   f"--readme {config.readme}")
        if config.section != "results":
            command += f" --section {config.section}"
        path = update_readme(config.readme, config.results[0], config.out, command,
                             section=config.section)
        lines.append(f"readme: {path}")
    return "\n".join(lines)
