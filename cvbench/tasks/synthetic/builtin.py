"""The built-in offline sets that `cvbench run` generates on first use (checked against the shipped
manifest, builtin_manifest.json)."""

BUILTIN_SEED = 0
BUILTIN_CVB_PER_TYPE = 6  # 17 x 6 = 102 questions
BUILTIN_MMVM_PER_CUE = 8  # 8 x 8 = 64 cases
