#!/usr/bin/env bash
# Builds dist/lstm-gpu-linux-x86_64.tar.xz: the release lstm-gpu with the Swift runtime linked
# in statically, the shared libraries a bare Linux machine may lack (the OpenCL ICD loader,
# OpenBLAS and its Fortran runtime), the parity fixtures, and a bin/lstm-gpu launcher that
# sets the library path. Runs from any folder on a machine without Swift.
#   scripts/make-bundle.sh            build the bundle
#   scripts/make-bundle.sh --check    build it, unpack it in a temporary folder and run
#                                     `devices` and `check` there with a clean environment
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"
name=lstm-gpu-linux-x86_64
stage=dist/$name
swift build -c release --product lstm-gpu --static-swift-stdlib
binary=$(swift build -c release --show-bin-path)/lstm-gpu
rm -rf "$stage" "dist/$name.tar.xz"
mkdir -p "$stage/bin" "$stage/libexec" "$stage/lib" "$stage/fixtures"
cp "$binary" "$stage/libexec/lstm-gpu"
strip "$stage/libexec/lstm-gpu" || true

# Shared libraries to carry: everything ldd resolves except the C runtime and the C++
# runtime every Linux has (a GPU driver loaded into the process needs the system's own),
# plus OpenBLAS, which the binary does not link but loads at first use (dlopen of
# libopenblas.so.0, after choosing its kernels from CPUID): dlopen searches LD_LIBRARY_PATH,
# which the launcher sets to the bundle's lib folder.
openblas=$(ldconfig -p 2>/dev/null | awk '$1 == "libopenblas.so.0" && /x86-64/ {print $NF; exit}')
[ -n "$openblas" ] || openblas=$(ls /usr/lib/x86_64-linux-gnu/libopenblas.so.0 2>/dev/null || true)
[ -n "$openblas" ] || { echo "libopenblas.so.0 not found (apt install libopenblas0)" >&2; exit 1; }
{ ldd "$stage/libexec/lstm-gpu"; echo "	libopenblas.so.0 => $openblas (0x0)"; } | awk '/=> \//{print $1, $3}' | while read -r soname path; do
  case "$soname" in
    libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libstdc++.so*|libgcc_s.so*) continue ;;
  esac
  cp -L "$path" "$stage/lib/$soname"
  # and their own dependencies (OpenBLAS -> gfortran -> quadmath)
  ldd "$path" | awk '/=> \//{print $1, $3}' | while read -r dep deppath; do
    case "$dep" in
      libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libstdc++.so*|libgcc_s.so*) continue ;;
    esac
    [ -e "$stage/lib/$dep" ] || cp -L "$deppath" "$stage/lib/$dep"
  done
done

cat > "$stage/bin/lstm-gpu" <<'LAUNCHER'
#!/bin/sh
# Runs the bundled lstm-gpu with the bundled shared libraries.
here=$(dirname "$(readlink -f "$0")")/..
LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/libexec/lstm-gpu" "$@"
LAUNCHER
chmod +x "$stage/bin/lstm-gpu"
cp Tests/LSTMKitTests/Fixtures/*.safetensors "$stage/fixtures/"
cp README.md "$stage/"
tar -C dist -cJf "dist/$name.tar.xz" "$name"
echo "wrote dist/$name.tar.xz ($(du -h "dist/$name.tar.xz" | cut -f1)); libraries: $(ls "$stage/lib" | tr '\n' ' ')"

if [ "${1:-}" = "--check" ]; then
  tmp=$(mktemp -d)
  tar -C "$tmp" -xJf "dist/$name.tar.xz"
  cd /
  env -i PATH=/usr/bin:/bin HOME="$tmp/home" "$tmp/$name/bin/lstm-gpu" devices
  # the CPU path's BLAS is the bundled one
  env -i PATH=/usr/bin:/bin HOME="$tmp/home" "$tmp/$name/bin/lstm-gpu" devices | grep -q "BLAS .*/$name/" \
    || { echo "the bundled lstm-gpu did not load the bundled OpenBLAS" >&2; exit 1; }
  env -i PATH=/usr/bin:/bin HOME="$tmp/home" "$tmp/$name/bin/lstm-gpu" check "$tmp/$name/fixtures" --quiet | tail -1
  if env -i PATH=/usr/bin:/bin "$tmp/$name/bin/lstm-gpu" devices | grep -q '^\[0\]'; then
    env -i PATH=/usr/bin:/bin HOME="$tmp/home" "$tmp/$name/bin/lstm-gpu" check "$tmp/$name/fixtures" --backend opencl --quiet | tail -1
  fi
  rm -rf "$tmp"
fi
