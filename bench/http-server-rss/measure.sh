#!/bin/bash
# Usage: ./measure.sh [RUNS] [HOLD_N]   (run from bench/http-server-rss after `swift build -c release`)
# For each binary and each run: fresh process, sleep 2 s, VmRSS (idle); 200 sequential requests,
# 100 concurrent connections, VmRSS (after load); kill. Then a separate fresh process per run with
# HOLD_N connections held open (RSS while held). Raw lines go to results/raw.jsonl.
set -u
cd "$(dirname "$0")"
RUNS=${1:-3}
HOLD=${2:-1000}
BIN=.build/release
mkdir -p results
OUT=results/raw.jsonl
: > "$OUT"
port=18100
status() { awk -v k="$2" '$1==k":" {print $2}' /proc/$1/status; }
for b in idle baseline baseline_curl baseline_async baseline_net flyingfox; do
  for run in $(seq 1 "$RUNS"); do
    port=$((port+1))
    $BIN/$b $port > results/$b.$run.log 2>&1 &
    pid=$!
    sleep 2
    idle_rss=$(status $pid VmRSS); idle_thr=$(status $pid Threads); idle_anon=$(status $pid RssAnon); idle_file=$(status $pid RssFile)
    seq='null'; conc='null'; load_rss='null'; load_hwm='null'; load_thr='null'; load_anon='null'; load_file='null'
    if [ "$b" != idle ]; then
      seq=$(python3 load.py seq $port 200)
      conc=$(python3 load.py conc $port 100)
      sleep 0.5
      load_rss=$(status $pid VmRSS); load_hwm=$(status $pid VmHWM); load_thr=$(status $pid Threads); load_anon=$(status $pid RssAnon); load_file=$(status $pid RssFile)
    fi
    alive=$(kill -0 $pid 2>/dev/null && echo true || echo false)
    echo "{\"bin\":\"$b\",\"run\":$run,\"phase\":\"load\",\"idle_rss_kb\":$idle_rss,\"idle_threads\":$idle_thr,\"idle_anon_kb\":$idle_anon,\"idle_file_kb\":$idle_file,\"load_rss_kb\":$load_rss,\"load_hwm_kb\":$load_hwm,\"load_threads\":$load_thr,\"load_anon_kb\":$load_anon,\"load_file_kb\":$load_file,\"alive\":$alive,\"seq\":$seq,\"conc\":$conc}" | tee -a "$OUT"
    kill $pid; wait $pid 2>/dev/null
  done
done
if [ "$HOLD" -gt 0 ]; then
  for b in baseline baseline_curl baseline_async baseline_net flyingfox; do
    for run in $(seq 1 "$RUNS"); do
      port=$((port+1))
      $BIN/$b $port > results/$b.hold.$run.log 2>&1 &
      pid=$!
      sleep 2
      idle_rss=$(status $pid VmRSS)
      hold=$(python3 load.py hold $port $HOLD $pid)
      alive=$(kill -0 $pid 2>/dev/null && echo true || echo false)
      echo "{\"bin\":\"$b\",\"run\":$run,\"phase\":\"hold\",\"idle_rss_kb\":$idle_rss,\"alive\":$alive,\"hold\":$hold}" | tee -a "$OUT"
      kill $pid; wait $pid 2>/dev/null
    done
  done
fi
ls -l $BIN/idle $BIN/baseline $BIN/baseline_curl $BIN/baseline_async $BIN/baseline_net $BIN/flyingfox | tee results/sizes.txt
size $BIN/idle $BIN/baseline $BIN/baseline_curl $BIN/baseline_async $BIN/baseline_net $BIN/flyingfox | tee -a results/sizes.txt
