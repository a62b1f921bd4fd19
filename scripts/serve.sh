#!/usr/bin/env bash
# Set up (scripts/setup.sh), build the web app with the bundled default model, and serve it
# on 127.0.0.1 with the COOP/COEP headers threads need (prints the URL). Args go to serve.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec python3 scripts/serve.py "$@"
