#!/usr/bin/env bash
# Installs every build and test dependency of lmserve from Debian 12 packages.
# Idempotent: packages already present are not fetched again. This is the only list of
# dependencies; the Dockerfiles run this script too.
#   scripts/install-deps.sh            build + test dependencies
#   scripts/install-deps.sh --build    build dependencies only (the Docker build stage)
#   scripts/install-deps.sh --runtime  only the shared libraries the lmserve binary needs
set -euo pipefail

BUILD_PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libboost1.81-dev            # Beast/Asio (header-only)
  nlohmann-json3-dev          # JSON
  prometheus-cpp-dev          # /metrics
  libpcre2-dev                # tokenizer regexes
  libutf8proc-dev             # Unicode normalization
  libcli11-dev                # command line
)
TEST_PACKAGES=(
  googletest libgtest-dev libgmock-dev  # unit tests
  libbenchmark-dev                      # bench/
  prometheus                            # promtool check metrics
  curl python3
)
RUNTIME_PACKAGES=(
  libpcre2-8-0 libutf8proc2 libprometheus-cpp-core1.0 libstdc++6 ca-certificates curl
)

if [[ "${1:-}" == "--runtime" ]]; then
  WANTED=("${RUNTIME_PACKAGES[@]}")
elif [[ "${1:-}" == "--build" ]]; then
  WANTED=("${BUILD_PACKAGES[@]}")
else
  WANTED=("${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}")
fi

missing=()
# node and npm run the official openai client in the e2e tests; a machine that has them
# from elsewhere (e.g. NodeSource) keeps its own, since Debian's npm conflicts with it.
if [[ -z "${1:-}" ]] && ! command -v npm >/dev/null 2>&1; then
  WANTED+=(nodejs npm)
fi
for pkg in "${WANTED[@]}"; do
  [[ "$pkg" == \#* ]] && continue
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]})); then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install-deps: all packages present" >&2
fi
