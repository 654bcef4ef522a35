#!/bin/sh
# Runs each Check program given, then prints one closing line for the lot:
# "checks: N passed, M failed" (a program that dies, or exits non-zero after
# passing every check, counts as one failure), and how long each took.
# $RUNNER, if set, is put in front of each program (an emulator).
passed=0
failed=0
log=$(mktemp)
for t in "$@"; do
    echo "== $t"
    start=$(date +%s)
    $RUNNER "$t" >"$log" 2>&1
    status=$?
    cat "$log"
    echo "   ($(($(date +%s) - start)) s)"
    line=$(grep -E '^[0-9]+%: Checks: ' "$log" | tail -n 1)
    if [ "$status" -ne 0 ] && [ -n "$line" ] && echo "$line" | grep -q '^100%'; then
        echo "$t: exit status $status after all checks passed"
        failed=$((failed + 1))
    elif [ -n "$line" ]; then
        checks=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
        bad=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+), Errors: ([0-9]+).*/\1 \2/' | awk '{print $1 + $2}')
        passed=$((passed + checks - bad))
        failed=$((failed + bad))
    else
        failed=$((failed + 1))
    fi
done
rm -f "$log"
echo "checks: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
