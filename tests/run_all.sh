#!/bin/sh
# Runs each Check program given, then prints one closing line for the lot.
passed=0
failed=0
for t in "$@"; do
    echo "== $t"
    if "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "test programs: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
