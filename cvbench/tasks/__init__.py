"""Task specs and loaders: CrossViewBench JSONL, MMVM TSV + case folders, HF Hub, the synthetic benchmark."""
