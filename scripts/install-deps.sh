#!/usr/bin/env bash
# Installs every Debian package that vitopt's build, tests and main job need.
# Idempotent: skips apt entirely when everything is already installed. Run as root (or with sudo).
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libopenblas0-pthread libopenblas-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev libspdlog-dev libstb-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev zlib1g-dev libgloo-dev
  gnuplot-nox graphviz dataset-fashion-mnist python3-torch python3-numpy
  clang libclang-rt-14-dev
  libonnx-dev libprotobuf-dev protobuf-compiler pybind11-dev python3-dev nodejs
)
# ONNX export tests run ONNX Runtime from npm (onnxruntime-node). Some nodejs builds bundle npm
# (NodeSource's); Debian's ships it as its own package.
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# LibTorch takes whatever libblas.so.3 points to: make sure that is OpenBLAS (pthread flavour),
# not the ~30x slower reference BLAS.
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
openblas="/usr/lib/${arch}/openblas-pthread/libblas.so.3"
if [ -e "$openblas" ]; then
  current=$(update-alternatives --query "libblas.so.3-${arch}" 2>/dev/null | awk '/^Value:/{print $2}')
  if [ "$current" != "$openblas" ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO update-alternatives --set "libblas.so.3-${arch}" "$openblas"
  fi
  openlapack="/usr/lib/${arch}/openblas-pthread/liblapack.so.3"
  if [ -e "$openlapack" ]; then
    current=$(update-alternatives --query "liblapack.so.3-${arch}" 2>/dev/null | awk '/^Value:/{print $2}')
    if [ "$current" != "$openlapack" ]; then
      SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
      $SUDO update-alternatives --set "liblapack.so.3-${arch}" "$openlapack"
    fi
  fi
fi
echo "install-deps: all dependencies present"
