"""Model adapters: one module per backend, a registry of `provider:model` strings and aliases, baselines."""
