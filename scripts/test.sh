#!/usr/bin/env bash
# The test command (README): setup (idempotent), lint, typecheck, unit and integration tests.
# Integration tests bring their own labs up and down; this script downs any lab of this run
# that an interrupted run left behind, and stops the processes its harness recorded (Redis,
# keizokud, probe agents) that are still running.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

export KEIZOKU_TEST_RUN_ID=${KEIZOKU_TEST_RUN_ID:-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')}
cleanup() {
  node --import tsx test/support/sweep-children.ts "$KEIZOKU_TEST_RUN_ID" || true
  node --import tsx lab/cli.ts down --owner "test:$KEIZOKU_TEST_RUN_ID" >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "== lint"
npx biome check .
echo "== typecheck"
npx tsc -p tsconfig.json
echo "== tests"
mkdir -p artifacts
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=artifacts/vitest.json "$@" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync("artifacts/vitest.json", "utf8"));
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' || true
exit $status
