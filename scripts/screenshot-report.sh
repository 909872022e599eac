#!/usr/bin/env bash
# Renders a vitopt report (report.html) in headless Chromium (Debian's `chromium`) to a PNG, to check
# by eye that the plots are there: scripts/screenshot-report.sh runs/default/report/report.html out.png
set -euo pipefail
html=${1:?usage: $0 REPORT.html OUT.png [HEIGHT]}
out=${2:?usage: $0 REPORT.html OUT.png [HEIGHT]}
height=${3:-6000}
command -v chromium >/dev/null || { echo "chromium is not installed (apt-get install chromium)" >&2; exit 2; }
[ -f "$html" ] || { echo "$html: no such file" >&2; exit 2; }
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,"$height" \
  --screenshot="$(realpath -m "$out")" "file://$(realpath "$html")" 2>/dev/null
[ -s "$out" ] || { echo "$out: chromium wrote nothing" >&2; exit 1; }
echo "wrote $out"
