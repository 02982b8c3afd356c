#!/usr/bin/env bash
# run.sh: builds the libFuzzer harness from the addon's own sources and runs it, bounded.
#   bash fuzz/run.sh            20 seconds
#   bash fuzz/run.sh 3600       an hour
#   bash fuzz/run.sh -runs=N    N inputs (any other -flag is passed to libFuzzer as is)
# Env: FUZZ_BUILD (build dir, default build/fuzz), CXX (default clang++).
# Exit: 0 clean, 1 a crash or invariant violation (the input's path is printed), 2 the build
# failed, 77 clang or its fuzzer runtime is missing (skip).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="${FUZZ_BUILD:-$root/build/fuzz}"
cxx="${CXX:-clang++}"

skip() {
  echo "fuzz: SKIP: $*" >&2
  exit 77
}
command -v "$cxx" >/dev/null 2>&1 || skip "$cxx not found (apt-get install -y clang libclang-rt-14-dev)"
"$cxx" --version 2>/dev/null | grep -qi clang || skip "$cxx is not clang: libFuzzer needs clang"

mkdir -p "$build" || exit 1
bin="$build/parser_fuzz"
defines=()
# The addon's own sources: http.cc, session.cc, responses.cc, and every other source binding.gyp
# lists whose header they include (directly or through other headers), e.g. a helper split out of
# session.cc. Engine and Node-API files (engine_epoll.cc, vw.cc, ...) are never reached that way.
gyp_srcs="$(grep -oE '"native/[A-Za-z0-9_/]+\.cc"' "$root/binding.gyp" | tr -d '"')"
srcs=("$root/native/http/http.cc" "$root/native/http/session.cc" "$root/native/http/responses.cc")
includes() {  # the native headers a set of files includes, transitively
  local todo=("$@") seen=" " f h
  while [[ ${#todo[@]} -gt 0 ]]; do
    f="${todo[0]}"; todo=("${todo[@]:1}")
    for h in $(grep -oE '^#include "[^"]+"' "$f" 2>/dev/null | sed 's/#include "\(.*\)"/\1/'); do
      [[ "$seen" == *" $h "* || ! -f "$root/native/$h" ]] && continue
      seen+="$h "
      todo+=("$root/native/$h")
    done
  done
  echo "$seen"
}
while :; do
  hs="$(includes "${srcs[@]}")"
  added=0
  for s in $gyp_srcs; do
    [[ " ${srcs[*]} " == *" $root/$s "* ]] && continue
    h="${s#native/}"; h="${h%.cc}.h"  # as the sources include it: "http/session.h"
    if [[ "$hs" == *" $h "* ]]; then srcs+=("$root/$s"); added=1; fi
  done
  [[ $added == 0 ]] && break
done
for s in "${srcs[@]}"; do
  [[ -f "$s" ]] || { echo "fuzz: missing source $s" >&2; exit 2; }
done
srcs=("$here/parser_fuzz.cc" "${srcs[@]}")
flags=(-std=c++17 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -Wall -Wextra -I "$root/native")

# The fuzzer runtime is a separate package: tell "missing" apart from "the sources do not build".
probe="$build/probe.cc"
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' >"$probe"
if ! "$cxx" -fsanitize=fuzzer,address,undefined "$probe" -o "$build/probe" >"$build/probe.log" 2>&1; then
  skip "$cxx cannot link -fsanitize=fuzzer (the runtime is libclang-rt-14-dev): $(head -c 300 "$build/probe.log")"
fi

# Rebuild only when a source or header changed.
newest="$(ls -t "${srcs[@]}" "$root"/native/*/*.h "$root/binding.gyp" "$0" 2>/dev/null | head -1)"
if [[ ! -x "$bin" || "$newest" -nt "$bin" ]]; then
  echo "fuzz: building $bin from ${srcs[*]#$root/}"
  "$cxx" "${flags[@]}" "${defines[@]}" "${srcs[@]}" -o "$bin.tmp" || { echo "fuzz: build failed" >&2; exit 2; }
  mv "$bin.tmp" "$bin"
fi

# Budget: a bare number is seconds; -flags go to libFuzzer.
args=()
budget=()
for a in "$@"; do
  if [[ "$a" =~ ^[0-9]+$ ]]; then budget=(-max_total_time="$a")
  else args+=("$a"); fi
done
if [[ ${#budget[@]} -eq 0 ]] && ! printf '%s\n' "${args[@]}" | grep -qE '^-(runs|max_total_time)='; then
  budget=(-max_total_time=20)
fi

# The committed corpus is only read: new inputs go to a scratch copy, crashes to artifacts/.
# (libFuzzer writes new inputs into the first corpus dir given: here the regressions' copy.)
scratch="$(mktemp -d "${TMPDIR:-/tmp}/vw-fuzz.XXXXXX")"
regress="$(mktemp -d "${TMPDIR:-/tmp}/vw-fuzz-reg.XXXXXX")"
trap 'rm -rf "$scratch" "$regress"' EXIT
cp -r "$here/corpus/." "$scratch/"
artifacts="$build/artifacts"
mkdir -p "$artifacts"
find "$here/regressions" -maxdepth 1 -type f ! -name 'README*' -exec cp {} "$regress/" \;

# Regressions first, one by one, before any fuzzing (libFuzzer itself would run a corpus sorted
# by size, not in the order given); they stay in the corpus after that to seed mutations.
log="$build/last.log"
mapfile -t regs < <(find "$regress" -type f | sort)
if [[ ${#regs[@]} -gt 0 ]]; then
  echo "fuzz: ${#regs[@]} regression input(s) from fuzz/regressions/"
  for r in "${regs[@]}"; do
    if ! "$bin" -artifact_prefix="$artifacts/" "$r" >"$log" 2>&1; then
      cat "$log"
      echo "fuzz: FAILED: regression fuzz/regressions/$(basename "$r") fails again" >&2
      echo "fuzz: reproduce: $bin $here/regressions/$(basename "$r")" >&2
      exit 1
    fi
  done
fi

echo "fuzz: ${budget[*]} ${args[*]} (log: $log)"
"$bin" -artifact_prefix="$artifacts/" -print_final_stats=1 \
  "${budget[@]}" "${args[@]}" "$regress" "$scratch" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

if [[ $rc -ne 0 ]]; then
  crash="$(grep -oE "Test unit written to [^ ]+" "$log" | tail -1 | sed 's/Test unit written to //')"
  echo "fuzz: FAILED: libFuzzer reported a finding (its exit code $rc)" >&2
  [[ -n "$crash" ]] && echo "fuzz: crash input: $crash" >&2 &&
    echo "fuzz: reproduce: $bin $crash   (then copy it into fuzz/regressions/)" >&2
  exit 1
fi
echo "fuzz: OK"
