from __future__ import annotations

from tests.reports.fixtures import factory_runs, xss_run

__all__ = ["factory_runs", "xss_run"]
