#!/usr/bin/env bash
# Copies into the git-ignored .gpu-carry/ the few build dependencies a GPU machine with
# only the CUDA toolkit, cmake and ninja lacks: nlohmann_json and CLI11 headers, and the
# GoogleTest sources (cmake/LmserveDeps.cmake falls back to these paths). Run it here,
# then send .gpu-carry along with the tree and run scripts/gpu-check.sh there.
set -euo pipefail
cd "$(dirname "$0")/.."

dest=.gpu-carry
for src in /usr/include/nlohmann/json.hpp /usr/include/CLI/CLI.hpp /usr/src/googletest/CMakeLists.txt; do
  [[ -f "$src" ]] || { echo "gpu-carry: $src is missing: run scripts/install-deps.sh" >&2; exit 1; }
done
rm -rf "$dest"
mkdir -p "$dest/include"
# Debian splits json.hpp into detail/ headers, so the whole folder goes.
cp -r /usr/include/nlohmann "$dest/include/nlohmann"
cp -r /usr/include/CLI "$dest/include/CLI"
cp -r /usr/src/googletest "$dest/googletest"
echo "gpu-carry: $(du -sh "$dest" | cut -f1) in $dest (nlohmann_json, CLI11, GoogleTest)"
