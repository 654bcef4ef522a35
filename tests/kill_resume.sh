#!/bin/bash
# Kills training runs at random moments and resumes them: each resumed run
# must end with the same model.bin and errors.tsv (seconds aside) as a run
# that was never stopped. Not part of `make test` (whole runs on the real
# data, minutes); test_cli holds the same property on a small set.
#
#   tests/kill_resume.sh DATA_DIR [TRIALS] [COLORIZE OPTIONS...]
#
# e.g. tests/kill_resume.sh ../shared/cifar/cifar-10-batches-py 8 --arch dense -e 3
# Each trial picks SIGKILL or SIGTERM and a moment between 1 s and the
# whole run's length. Prints one line per trial; exits 1 if any differs.
set -u
data=${1:?usage: tests/kill_resume.sh DATA_DIR [TRIALS] [OPTIONS...]}
trials=${2:-6}
shift $(($# < 2 ? $# : 2))
opts=("$@")
[ ${#opts[@]} -gt 0 ] || opts=(-e 3)
bin=${COLORIZE:-./colorize}
work=$(mktemp -d /tmp/colorize-kill-XXXXXX)
trap 'rm -rf "$work"' EXIT

start=$(date +%s.%N)
"$bin" -q "${opts[@]}" -o "$work/whole" "$data" >/dev/null || { echo "the whole run failed"; exit 1; }
whole_s=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
printf 'whole run: %.1f s\n' "$whole_s"
cut -f1-7 "$work/whole/errors.tsv" >"$work/whole.tsv"

failed=0
for t in $(seq 1 "$trials"); do
    sig=$((RANDOM % 2 ? 9 : 15))
    at=$(awk -v w="$whole_s" -v r=$RANDOM 'BEGIN { printf "%.2f", 1 + (w - 1) * r / 32767 }')
    out="$work/t$t"
    "$bin" -q "${opts[@]}" -o "$out" "$data" >/dev/null 2>"$work/t$t.err" &
    pid=$!
    sleep "$at"
    kill -"$sig" "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    code=$?
    rows=$(($( [ -f "$out/errors.tsv" ] && wc -l <"$out/errors.tsv" || echo 1) - 1))
    if [ ! -f "$out/model.bin" ]; then
        printf 'trial %d: signal %2d at %5.1f s, exit %d: no model yet, nothing to resume\n' \
            "$t" "$sig" "$at" "$code"
        continue
    fi
    if ! "$bin" -q --resume "$out/model.bin" -o "$out" "$data" >/dev/null 2>>"$work/t$t.err"; then
        printf 'trial %d: signal %2d at %5.1f s: the resume failed: %s\n' "$t" "$sig" "$at" \
            "$(tail -1 "$work/t$t.err")"
        failed=1
        continue
    fi
    if cmp -s "$work/whole/model.bin" "$out/model.bin" &&
        cut -f1-7 "$out/errors.tsv" | cmp -s - "$work/whole.tsv"; then
        verdict="identical"
    else
        verdict="DIFFERS"
        failed=1
    fi
    printf 'trial %d: signal %2d at %5.1f s, exit %d, errors.tsv %d epochs: resumed, %s\n' \
        "$t" "$sig" "$at" "$code" "$rows" "$verdict"
done
exit $failed
