#!/usr/bin/env bash
# Re-create the vendored assets from the npm registry. The site loads nothing from a CDN and
# no maths or diagram script: KaTeX's script typesets the formulas during the build
# (sitetools/maths.py, from sitetools/vendor/katex.min.js); the pages load only KaTeX's
# stylesheet and fonts (docs/assets/vendor/katex). Diagrams are drawn by sitetools/diagrams.py.
# Run this only to upgrade them; the result is committed.
#   scripts/vendor-assets.sh            # versions below
set -euo pipefail
KATEX_VERSION=0.16.47
AXE_VERSION=4.14.1

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent "katex@$KATEX_VERSION" "axe-core@$AXE_VERSION" >/dev/null
for f in *.tgz; do mkdir -p "${f%.tgz}" && tar -xzf "$f" -C "${f%.tgz}"; done

out="$root/docs/assets/vendor"
rm -rf "$out/katex"
mkdir -p "$out/katex/fonts"
k="katex-$KATEX_VERSION/package/dist"
cp "$k/katex.min.js" "$root/sitetools/vendor/katex.min.js"
cp "katex-$KATEX_VERSION/package/LICENSE" "$root/sitetools/vendor/katex.LICENSE"
cp "$k"/fonts/*.woff2 "$out/katex/fonts/"
# Every browser that runs this site reads woff2; drop the woff/ttf fallbacks from the CSS
# so that it names only files that are here.
sed -E 's/,url\(fonts\/[A-Za-z0-9_-]+\.(woff|ttf)\) format\("(woff|truetype)"\)//g' "$k/katex.min.css" > "$out/katex/katex.min.css"
cp "katex-$KATEX_VERSION/package/LICENSE" "$out/katex/LICENSE"
# axe-core runs inside the browser tests (accessibility), never on the site.
mkdir -p "$root/tests/vendor"
cp "axe-core-$AXE_VERSION/package/axe.min.js" "$root/tests/vendor/axe.min.js"
cp "axe-core-$AXE_VERSION/package/LICENSE" "$root/tests/vendor/axe-core.LICENSE"

cat > "$out/VENDORED.txt" <<TXT
Vendored by scripts/vendor-assets.sh from the npm registry: katex $KATEX_VERSION (stylesheet and
woff2 fonts only; its script, which typesets the formulas during the build, is
sitetools/vendor/katex.min.js). Do not edit by hand; re-run the script to upgrade.
TXT
echo "vendored katex $KATEX_VERSION, axe-core $AXE_VERSION"
