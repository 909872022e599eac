#!/usr/bin/env bash
# CI step: clang-format (config in .clang-format) on the C++ lines changed since a base commit, so
# new code is formatted without a tree-wide reformat that would collide with work in flight.
# Usage: scripts/check-format.sh [BASE]   (default: $VITOPT_FORMAT_BASE, else origin/main or main
#        when HEAD is not on it, else HEAD~1)
#        scripts/check-format.sh --all    (every tracked C++ file; reports, exit 1 if any differ)
#        scripts/check-format.sh --fix [BASE]   (rewrites the changed lines in place)
set -euo pipefail
cd "$(dirname "$0")/.."
clang_format=$(command -v clang-format-14 || command -v clang-format || true)
diff_tool=$(command -v clang-format-diff-14 || command -v clang-format-diff || true)
[ -n "$clang_format" ] || { echo "check-format: clang-format not installed" >&2; exit 2; }
cxx_files() { git ls-files -- '*.cpp' '*.h' '*.inc' '*.hpp'; }

if [ "${1:-}" = "--all" ]; then
  bad=0
  total=0
  while read -r f; do
    total=$((total + 1))
    "$clang_format" --dry-run -Werror "$f" >/dev/null 2>&1 || { echo "  $f"; bad=$((bad + 1)); }
  done < <(cxx_files)
  echo "check-format: $bad of $total C++ files differ from .clang-format"
  [ "$bad" -eq 0 ]
  exit
fi

fix=0
if [ "${1:-}" = "--fix" ]; then fix=1; shift; fi
base=${1:-${VITOPT_FORMAT_BASE:-}}
if [ -z "$base" ]; then
  for ref in origin/main main; do
    if git rev-parse -q --verify "$ref" >/dev/null && [ "$(git rev-parse "$ref")" != "$(git rev-parse HEAD)" ]; then
      base=$(git merge-base "$ref" HEAD)
      break
    fi
  done
  [ -n "$base" ] || base=$(git rev-parse -q --verify HEAD~1 || true)
fi
[ -n "$base" ] || { echo "check-format: no base commit (single-commit clone): nothing to compare"; exit 0; }
[ -n "$diff_tool" ] || { echo "check-format: clang-format-diff not installed" >&2; exit 2; }

# Changed lines of tracked C++ files (committed since base plus the work tree).
patch=$(git diff -U0 --no-color "$base" -- '*.cpp' '*.h' '*.inc' '*.hpp')
if [ -z "$patch" ]; then
  echo "check-format: no C++ changes since $(git rev-parse --short "$base")"
  exit 0
fi
if [ "$fix" -eq 1 ]; then
  echo "$patch" | "$diff_tool" -p1 -i -binary "$clang_format"
  echo "check-format: changed lines reformatted"
  exit 0
fi
out=$(echo "$patch" | "$diff_tool" -p1 -binary "$clang_format")
if [ -n "$out" ]; then
  echo "$out"
  echo "check-format: changed lines differ from .clang-format (fix: scripts/check-format.sh --fix)" >&2
  exit 1
fi
echo "check-format: changed lines since $(git rev-parse --short "$base") follow .clang-format"
