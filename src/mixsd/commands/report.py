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
"""

from __future__ import annotations

import argparse

HELP = "Markdown/HTML report with plots from results.json files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="+", metavar="RUN_DIR",
                        help="folders holding results.json (or results.json files)")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write the report")
    parser.add_argument("--readme", metavar="FILE.md", default=None,
                        help="also rewrite the results section of this Markdown file (between "
                        "<!-- results:start --> and <!-- results:end -->) from the first results")
    parser.add_argument("--section", default="results", metavar="NAME",
                        help="which marked section --readme rewrites: <!-- NAME:start --> ... "
                        "<!-- NAME:end --> (default: results; the SmolLM2 comparison is 'real')")


def run(args: argparse.Namespace) -> str:
    from mixsd.report import write_report

    html = write_report(args.results, args.out)
    lines = [f"report: {html}", f"markdown: {html.with_name('report.md')}"]
    if args.readme:
        from mixsd.report.readme import update_readme

        command = f"mixsd report {' '.join(args.results)} --out {args.out} --readme {args.readme}"
        if args.section != "results":
            command += f" --section {args.section}"
        path = update_readme(args.readme, args.results[0], args.out, command,
                             section=args.section)
        lines.append(f"readme: {path}")
    return "\n".join(lines)
