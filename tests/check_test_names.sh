#!/usr/bin/env bash
# Fails when a doctest test case name contains ';'. doctest_discover_tests
# hands the names to CMake, which splits them at ';' (its list separator):
# ctest then runs a filter matching no test case, and "passes" without
# running anything. 29 tests were silently skipped that way until this check.
# Usage: check_test_names.sh TEST_BINARY...
set -euo pipefail
bad=0
for bin in "$@"; do
  while IFS= read -r name; do
    echo "$bin: test case name contains ';': $name" >&2
    bad=1
  done < <("$bin" --list-test-cases --no-intro=true | grep -v '^\[doctest\]' | grep -F ';' || true)
done
exit "$bad"
