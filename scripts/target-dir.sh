#!/usr/bin/env bash
# Prints the directory cargo builds into (`target/` unless CARGO_TARGET_DIR or a cargo config
# says otherwise), as cargo itself reports it, so that Makefile targets and scripts find the
# binaries wherever a developer builds.
set -euo pipefail
cd "$(dirname "$0")/.."
"${CARGO:-cargo}" metadata --format-version 1 --no-deps --offline 2>/dev/null \
  | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'
