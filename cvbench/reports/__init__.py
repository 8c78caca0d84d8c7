"""Per-run reports (Markdown / self-contained HTML) and table exports."""
