"""Typed values, mask codecs, visual prompting, the runner, cache, parsing, metrics and run I/O."""
