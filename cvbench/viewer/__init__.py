"""`cvbench view`: a local viewer over run directories that follows a run while it is written.

- `state.py` reads a run directory incrementally (new lines of samples.jsonl only) into JSON-ready
  snapshots: progress, the slice table with intervals, errors, and sample pages.
- `server.py` serves one page and a small JSON API on 127.0.0.1; the page (static/viewer.html,
  no external scripts) polls the API and redraws.
"""
