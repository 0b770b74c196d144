"""The config of `mixsd report`."""

from __future__ import annotations

from dataclasses import dataclass

from mixsd.config import StageConfig, option
from mixsd.errors import ConfigError


@dataclass
class ReportConfig(StageConfig):
    """Which experiments to report, where, and which README section to rewrite."""

    stage = "report"

    results: list[str] = option(default_factory=list, positional=True, nargs="+",
                                metavar="RUN_DIR", help="folders holding results.json (or "
                                "results.json files), or one folder written by `mixsd inject` "
                                "(its report.md and README section)")
    out: str = option("", "folder to write the report", metavar="DIR")
    readme: str | None = option(None, "also rewrite the results section of this Markdown file "
                                "(between <!-- results:start --> and <!-- results:end -->) "
                                "from the first results", metavar="FILE.md")
    section: str = option("results", "which marked section --readme rewrites: "
                          "<!-- NAME:start --> ... <!-- NAME:end --> (the SmolLM2 comparison is "
                          "'real')", metavar="NAME")

    def validate(self) -> None:
        super().validate()
        if not self.results:
            raise ConfigError("results: name at least one folder holding results.json "
                              "(RUN_DIR)")
        if not self.out:
            raise ConfigError("out is required (flag --out)")
        if not self.section.strip():
            raise ConfigError("section must not be empty (flag --section)")
