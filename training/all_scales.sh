#!/usr/bin/env bash
# Train x2 from scratch, then x3 and x4 from x2's early body (as the EDSR paper does), all three at
# once on one machine, inside a fixed time box. Each run's learning rate halves at fixed minutes, so the
# schedule fits the box whatever the machine's speed. Made for a lent GPU session:
#
#   training/all_scales.sh DATA RUNS MINUTES [extra train.py arguments]
#
# x2 trains MINUTES; x3 and x4 start HEADSTART seconds later (default 80) from x2's latest weights and
# stop at the same time. Each run folder ends with latest.pt, best.pt, meta.json and log.csv.
set -euo pipefail
data=$1 runs=$2 minutes=$3
shift 3
headstart=${HEADSTART:-80}
python=${PYTHON:-python3}

train() {  # scale minutes extra-args...
    local scale=$1 m=$2
    shift 2
    local decay
    decay=$(awk -v m="$m" 'BEGIN { printf "%.2f,%.2f", m * 0.6, m * 0.87 }')
    # The timeout is a backstop: --minutes ends the piece, and SIGTERM also saves before exiting.
    timeout -s TERM "$(awk -v m="$m" 'BEGIN { print int(m * 60 + 90) }')" \
        "$python" -m training.train --data "$data" --scale "$scale" --run "$runs/x$scale" \
        --minutes "$m" --decay-minutes "$decay" --iterations 10000000 --val-every 1000 \
        --checkpoint-minutes 0.5 --threads 4 "$@" >"$runs/x$scale.out" 2>&1
}

mkdir -p "$runs"
train 2 "$minutes" "$@" &
sleep "$headstart"
until [ -f "$runs/x2/latest.pt" ]; do sleep 5; done
cp "$runs/x2/latest.pt" "$runs/x2-init.pt"
rest=$(awk -v m="$minutes" -v h="$headstart" 'BEGIN { printf "%.2f", m - h / 60 }')
train 3 "$rest" --init-from "$runs/x2-init.pt" "$@" &
train 4 "$rest" --init-from "$runs/x2-init.pt" "$@" &
status=0
for job in $(jobs -p); do wait "$job" || status=$?; done
tail -n 3 "$runs"/x*.out
exit "$status"
