#!/usr/bin/env bash
# Fuzzes one target for a bounded time: scripts/fuzz.sh TARGET SECONDS
#
# TARGET is one of fuzz/Cargo.toml's: v1_form, v2_request, sigv4, mime,
# template, dns_records. The run starts from the kept corpus
# (fuzz/corpus/TARGET, seeded from the tests) and writes what it finds to
# fuzz/work/TARGET (not kept). A crash is saved in fuzz/artifacts/TARGET;
# copy it to fuzz/regressions/TARGET/, where the test suite replays it for
# ever (crates/sesame/tests/fuzz_corpus.rs), and fix it.
#
# Needs cargo-fuzz (installed from crates.io if missing) and a nightly
# toolchain if there is one; else the stable one with RUSTC_BOOTSTRAP=1.
# Not part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 2 ]; then
  echo "usage: scripts/fuzz.sh TARGET SECONDS" >&2
  exit 2
fi
target=$1
seconds=$2
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  fuzz=(cargo +nightly fuzz)
else
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi
mkdir -p "fuzz/work/$target" "fuzz/artifacts/$target"
"${fuzz[@]}" run --fuzz-dir fuzz "$target" "fuzz/work/$target" "fuzz/corpus/$target" -- \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -artifact_prefix="fuzz/artifacts/$target/" -print_final_stats=1
