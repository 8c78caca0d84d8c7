#!/usr/bin/env bash
# Re-lock the CI environments from pyproject.toml (a deliberate commit: review the golden diff
# that `cvbench regress --suite all` shows under the new versions before committing).
#   bash requirements/relock.sh
set -euo pipefail
cd "$(dirname "$0")/.."
common=(--python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-emit-index-url --no-emit-find-links
        -c requirements/constraints.txt)
uv pip compile pyproject.toml --extra dev "${common[@]}" -o requirements/ci.lock
uv pip compile pyproject.toml --extra lmms requirements/lmms-test.in "${common[@]}" -c .ci/lmms-constraints.txt \
  -o requirements/lmms.lock
