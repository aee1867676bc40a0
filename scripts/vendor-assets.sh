#!/usr/bin/env bash
# Re-create the vendored front-end assets under docs/assets/vendor/ from the npm registry.
# The site loads nothing from a CDN: KaTeX (maths) and Mermaid (diagrams) are served from
# the site itself. Run this only to upgrade them; the result is committed.
#   scripts/vendor-assets.sh            # versions below
set -euo pipefail
KATEX_VERSION=0.16.47
MERMAID_VERSION=11.17.2
AXE_VERSION=4.14.1

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent "katex@$KATEX_VERSION" "mermaid@$MERMAID_VERSION" "axe-core@$AXE_VERSION" >/dev/null
for f in *.tgz; do mkdir -p "${f%.tgz}" && tar -xzf "$f" -C "${f%.tgz}"; done

out="$root/docs/assets/vendor"
rm -rf "$out/katex" "$out/mermaid"
mkdir -p "$out/katex/fonts" "$out/mermaid"
k="katex-$KATEX_VERSION/package/dist"
cp "$k/katex.min.js" "$k/contrib/auto-render.min.js" "$out/katex/"
cp "$k"/fonts/*.woff2 "$out/katex/fonts/"
# Every browser that runs this site reads woff2; drop the woff/ttf fallbacks from the CSS
# so that it names only files that are here.
sed -E 's/,url\(fonts\/[A-Za-z0-9_-]+\.(woff|ttf)\) format\("(woff|truetype)"\)//g' "$k/katex.min.css" > "$out/katex/katex.min.css"
cp "katex-$KATEX_VERSION/package/LICENSE" "$out/katex/LICENSE"
# Mermaid's ES-module build: a small entry that imports the core chunks, and loads the code of
# each diagram type (and its layout) only when a page has a diagram of that type. All chunks
# are copied, so that any diagram type works; a page fetches only those it needs. (The
# one-file mermaid.min.js holds every diagram type: 3.6 MB on each page with a diagram.)
m="mermaid-$MERMAID_VERSION/package/dist"
mkdir -p "$out/mermaid/chunks/mermaid.esm.min"
cp "$m/mermaid.esm.min.mjs" "$out/mermaid/"
cp "$m"/chunks/mermaid.esm.min/*.mjs "$out/mermaid/chunks/mermaid.esm.min/"
cp "mermaid-$MERMAID_VERSION/package/LICENSE" "$out/mermaid/LICENSE"

# axe-core runs inside the browser tests (accessibility), never on the site.
mkdir -p "$root/tests/vendor"
cp "axe-core-$AXE_VERSION/package/axe.min.js" "$root/tests/vendor/axe.min.js"
cp "axe-core-$AXE_VERSION/package/LICENSE" "$root/tests/vendor/axe-core.LICENSE"

cat > "$out/VENDORED.txt" <<TXT
Vendored by scripts/vendor-assets.sh from the npm registry: katex $KATEX_VERSION (woff2 fonts
only), mermaid $MERMAID_VERSION (ES-module build). Do not edit by hand; re-run the script to upgrade.
TXT
echo "vendored katex $KATEX_VERSION, mermaid $MERMAID_VERSION, axe-core $AXE_VERSION"
