#!/usr/bin/env bash
# Rebuild dashboard/assets/plotly-lingtan.min.js: plotly.js with only the trace types the
# dashboard draws (scatter, bar, waterfall, sankey, indicator, treemap, sunburst), 1.4 MB instead of
# the 4.8 MB full bundle that dcc.Graph would otherwise fetch and evaluate on every cold page load.
# dcc.Graph uses window.Plotly when a page already has it. The plotly.js version must match the one plotly.py
# bundles (tests/dashboard/test_plotly_bundle.py checks it); run this after upgrading plotly.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(.venv/bin/python - <<'PY'
import re
from importlib.resources import files
head = files("plotly").joinpath("package_data/plotly.min.js").read_text()[:200]
print(re.search(r"plotly\.js v(\d+\.\d+\.\d+)", head).group(1))
PY
)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/entry.js" <<'JS'
var Plotly = require('plotly.js/lib/core');
Plotly.register([require('plotly.js/lib/scatter'), require('plotly.js/lib/bar'),
                 require('plotly.js/lib/waterfall'), require('plotly.js/lib/sankey'), require('plotly.js/lib/indicator'),
                 require('plotly.js/lib/treemap'), require('plotly.js/lib/sunburst')]);
window.Plotly = Plotly;
JS
(cd "$work" && npm init -y >/dev/null && npm install --no-audit --no-fund --silent \
  "plotly.js@$version" esbuild@0.25.12)
banner="/* plotly.js v$version (MIT, Copyright 2012-2026 Plotly, Inc.), partial bundle: core, scatter, bar, waterfall, sankey, indicator, treemap, sunburst. Built by scripts/build-plotly-bundle.sh */"
(cd "$work" && npx esbuild entry.js --bundle --minify --format=iife --target=es2017 \
  --define:global=window --legal-comments=eof --banner:js="$banner" --log-level=warning \
  --outfile=plotly-lingtan.min.js)
cp "$work/plotly-lingtan.min.js" dashboard/assets/plotly-lingtan.min.js
echo "dashboard/assets/plotly-lingtan.min.js: plotly.js v$version, $(wc -c < dashboard/assets/plotly-lingtan.min.js) bytes"
