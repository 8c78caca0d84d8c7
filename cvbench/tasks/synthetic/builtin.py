"""The built-in offline sets that `cvbench run` generates on first use (checked against the shipped
manifest, builtin_manifest.json)."""

BUILTIN_SEED = 0
BUILTIN_CVB_PER_TYPE = 6  # 17 x 6 = 102 questions
BUILTIN_MMVM_PER_CUE = 8  # 8 x 8 = 64 cases

# Bumped with every deliberate change to what a generator draws (then the shipped manifest is
# rewritten). A built-in set on disk from another version is moved aside and generated afresh on
# first use (cvbench/tasks/loading.py), so upgrading cvbench needs no step by hand.
CVB_GENERATOR_VERSION = "cvbench-synth-cvb/7"
MMVM_GENERATOR_VERSION = "cvbench-synth-mmvm/5"
