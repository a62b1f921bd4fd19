#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# set up everything, so a test that would skip for a missing tool fails instead (tests/conftest.py)
export PYLLM_REQUIRE_ALL=1
exec python3 -m pytest tests -q -p no:cacheprovider "$@"
