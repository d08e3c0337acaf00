#!/usr/bin/env bash
# README's first command: set up (idempotent), then run the demo on a fresh lab.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node --import tsx scripts/demo.ts
