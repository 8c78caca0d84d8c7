"""Bridges to other evaluation harnesses.

- ``cvbench.integrations.lmms_export``: write a task folder that lmms-eval loads with
  ``--include_path`` (``cvbench export-lmms``).
- ``cvbench.integrations.lmms_hooks``: the functions that folder's ``utils.py`` calls; they run
  cvbench's own prompting, parsing, record and metric code inside lmms-eval.

Neither module imports lmms-eval: the export is plain files, and the hooks only receive the
documents and answers lmms-eval hands them. The ``lmms:<model>`` adapter that runs an
lmms-eval model inside cvbench lives in ``cvbench.model_adapters.lmms``.
"""

from __future__ import annotations

__all__: list[str] = []
