#!/usr/bin/env bash
# Runs one fuzz target of fuzz/ under AFL++ (cargo-afl) for a number of
# seconds; not part of CI (docs/reliability.md). Needs `cargo install
# cargo-afl` and `cargo afl config --build` once.
#
#   scripts/fuzz-afl.sh <target> <seconds> [output dir]
#
# Rerunning with the same output dir resumes the campaign (AFL_AUTORESUME),
# so runs add up to the hour per target the reliability notes ask for.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:?usage: scripts/fuzz-afl.sh <target> <seconds> [output dir]}
seconds=${2:?usage: scripts/fuzz-afl.sh <target> <seconds> [output dir]}
out=${3:-/tmp/primacy-afl/$target}

# An explicit --target keeps AFL's instrumentation flags off build scripts
# and proc macros (they run in the compiler, not in the fuzzed program).
# opt-level 1 (cargo-afl's default is 3): the instrumented build of the whole
# dependency tree takes a fraction of the time, at some cost in execs/s.
export AFL_OPT_LEVEL=${AFL_OPT_LEVEL:-1}
triple=$(rustc -vV | sed -n 's/^host: //p')
(cd fuzz && cargo afl build --release --features afl --bin fuzz-afl --target "$triple")
mkdir -p "$out"
# -t: an input that runs over 1 s is a hang; -V: stop after $seconds.
# No UI, no CPU pinning (the machine is shared), crashes still recorded even
# when the kernel's core_pattern pipes cores elsewhere.
AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_AUTORESUME=1 AFL_SKIP_CPUFREQ=1 \
    AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
    cargo afl fuzz -V "$seconds" -t 1000 -i "fuzz/corpus/$target" -o "$out" \
    -- "target/$triple/release/fuzz-afl" "$target"
grep -E '^(run_time|execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs|bitmap_cvg) ' \
    "$out/default/fuzzer_stats"
