#!/usr/bin/env bash
# C++ compiler wrapper for building horovod 0.28.1 against torch >= 2.1.
# Horovod's CMake hard-codes C++14, but torch's headers need C++17: rewrite the flag, pass the
# rest through to the real compiler (FLIGHTLINE_REAL_CXX, default g++).
args=()
for a in "$@"; do
  case "$a" in
    -std=c++14 | -std=gnu++14 | -std=c++1y | -std=gnu++1y) a="-std=c++17" ;;
  esac
  args+=("$a")
done
exec "${FLIGHTLINE_REAL_CXX:-g++}" "${args[@]}"
