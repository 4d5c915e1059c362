#!/usr/bin/env bash
# Brings what the tests need beyond Python: Debian's chromium, plantuml and graphviz,
# npm's mermaid-cli (into .tools/) and the Node.js exporter test app's packages.
# Installs what is missing when it can (root with apt-get); otherwise stops with one line
# naming what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v plantuml >/dev/null 2>&1 || missing+=(plantuml)
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-tools: installing ${missing[*]} with apt-get" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "seqtrace: the tests need: sudo apt-get install ${missing[*]}" >&2
    exit 2
  fi
fi

if [ ! -x .tools/node_modules/.bin/mmdc ]; then
  echo "ensure-tools: installing @mermaid-js/mermaid-cli into .tools/" >&2
  mkdir -p .tools
  (cd .tools && [ -f package.json ] || echo '{"private": true}' > package.json)
  (cd .tools && PUPPETEER_SKIP_DOWNLOAD=1 npm install --silent --no-audit --no-fund \
      @mermaid-js/mermaid-cli@11 >/dev/null) || {
    echo "seqtrace: could not install mermaid-cli: run (cd .tools && PUPPETEER_SKIP_DOWNLOAD=1 npm install @mermaid-js/mermaid-cli)" >&2
    exit 2
  }
fi

if [ -f tests/node_exporter/package.json ] && [ ! -d tests/node_exporter/node_modules ]; then
  echo "ensure-tools: installing the Node.js exporter test app's packages" >&2
  (cd tests/node_exporter && if [ -f package-lock.json ]; then npm ci --silent --no-audit --no-fund; else npm install --silent --no-audit --no-fund; fi >/dev/null) || {
    echo "seqtrace: could not install tests/node_exporter packages: run (cd tests/node_exporter && npm ci)" >&2
    exit 2
  }
fi
