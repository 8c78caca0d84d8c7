"""The jinja2 environment for every HTML page cvbench writes: autoescaping always on."""

from __future__ import annotations

from functools import cache

import jinja2

from cvbench.reports.exports import column_groups

# Every page carries this policy: no inline scripts (only type="application/json" data
# blocks, which browsers never execute), no remote resources.
CSP = (
    "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'"
)


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}%"


@cache
def environment(package: str = "cvbench.reports") -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"),
        autoescape=True,  # every template, whatever its extension
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["rate"] = _rate
    env.globals["column_groups"] = column_groups
    return env
