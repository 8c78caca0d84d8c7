"""Tests of the model adapters, the registry and aliases."""
