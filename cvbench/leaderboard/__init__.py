"""The static leaderboard site builder and the papers' reported reference rows.

See docs/leaderboard.md.
"""

from __future__ import annotations

from cvbench.leaderboard.reference import (
    ReferenceDataError,
    ReportedValue,
    load_reported,
)
from cvbench.leaderboard.site import SiteBuild, build_site
from cvbench.leaderboard.site_samples import SiteError

__all__ = ["ReferenceDataError", "ReportedValue", "SiteBuild", "SiteError", "build_site", "load_reported"]
