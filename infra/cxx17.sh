#!/usr/bin/env bash
# C++ compiler wrapper for building horovod 0.28.1 against torch >= 2.1.
# Horovod's CMake hard-codes C++14, but torch's headers need C++17: rewrite the flag. g++ >= 13
# no longer includes <cstdint>, <string>, <stdexcept> and <limits> transitively, which some of
# horovod's sources rely on: compile steps get them explicitly. The rest passes through to the
# real compiler (FLIGHTLINE_REAL_CXX, default g++).
args=()
compile=0
for a in "$@"; do
  case "$a" in
    -std=c++14 | -std=gnu++14 | -std=c++1y | -std=gnu++1y) a="-std=c++17" ;;
    -c) compile=1 ;;
  esac
  args+=("$a")
done
if [[ $compile == 1 ]]; then
  args=(-include cstdint -include string -include stdexcept -include limits "${args[@]}")
fi
exec "${FLIGHTLINE_REAL_CXX:-g++}" "${args[@]}"
