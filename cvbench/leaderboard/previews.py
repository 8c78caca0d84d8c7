"""Downscaled JPEG previews (made in cvbench/reports/previews.py, shared with report.html)."""

from cvbench.reports.previews import IMAGE_MODES, PreviewSettings, preview_jpeg, preview_size

__all__ = ["IMAGE_MODES", "PreviewSettings", "preview_jpeg", "preview_size"]
