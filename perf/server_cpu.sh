# Sourced by perf/compare.sh and perf/ab.sh: how much CPU a server process used while one
# measured `radshard bench` run was going. Not meant to be run on its own.
#
#   before=$(cpu_snapshot "$PID")
#   ... one bounded bench run ...
#   after=$(cpu_snapshot "$PID")
#   cpu_json "$before" "$after"      # -> {"cpu_ns": ..., "source": "schedstat", ...}
#
# Two sources, both read from /proc:
#   * schedstat: the first field of /proc/PID/task/TID/schedstat is that thread's time on a CPU
#     in ns; summed over every thread of the process (io_uring workers such as radshard's
#     iou-wrk-* included). ns precision, but a thread that exits between the two snapshots
#     takes its time with it (one that starts adds only its own, which is right).
#   * stat: utime + stime (fields 14 and 15) of /proc/PID/stat, in clock ticks (getconf
#     CLK_TCK, usually 100/s, i.e. 10 ms). The whole thread group, exited threads included, but
#     10 ms granular and sampled by the tick.
# cpu_json uses schedstat when no thread of the first snapshot is missing from the second and
# schedstat exists, and stat otherwise; both deltas are kept in the JSON so either can be checked.
# It also keeps schedstat's second field summed over the threads, wait_ns: time the server's
# threads were runnable but waiting for a CPU: for a pinned server, other processes on its core
# *and* its own threads queueing behind each other there (radshard's accounting io_uring worker
# waits behind the shard thread), so it is for comparing like with like, not an absolute.

CPU_CLK_TCK=$(getconf CLK_TCK)

# cpu_snapshot PID: prints "SCHED_NS WAIT_NS STAT_TICKS TIDS" (TIDS: comma-separated thread
# ids; SCHED_NS and WAIT_NS are -1 when schedstat is unavailable). Fails if the process is gone.
cpu_snapshot() {
    local pid=$1 ns=0 wait=0 have=0 t first second stat tids=""
    local -a s
    for t in /proc/"$pid"/task/*; do
        # A thread may exit between the glob and the read: skip it.
        if read -r first second _ 2>/dev/null <"$t/schedstat"; then
            ns=$((ns + first)); wait=$((wait + second)); have=1
        fi
        tids+="${t##*/},"
    done
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    # comm (field 2) may hold spaces and parentheses: cut at the last ") ".
    stat=${stat##*) }
    read -r -a s <<<"$stat"
    # s[0] is field 3 (state), so utime (14) is s[11] and stime (15) is s[12].
    [ "$have" = 1 ] || { ns=-1; wait=-1; }
    echo "$ns $wait $((s[11] + s[12])) ${tids%,}"
}

# cpu_json BEFORE AFTER: the delta between two snapshots as one JSON object.
cpu_json() {
    local b_ns b_wait b_ticks b_tids a_ns a_wait a_ticks a_tids
    read -r b_ns b_wait b_ticks b_tids <<<"$1"
    read -r a_ns a_wait a_ticks a_tids <<<"$2"
    jq -n --argjson bns "$b_ns" --argjson ans "$a_ns" --argjson bt "$b_ticks" --argjson at "$a_ticks" \
        --argjson bw "$b_wait" --argjson aw "$a_wait" \
        --arg btids "$b_tids" --arg atids "$a_tids" --argjson hz "$CPU_CLK_TCK" '
        ($btids | split(",")) as $bl | ($atids | split(",")) as $al |
        ($bl | length) as $nb | ($al | length) as $na |
        (($bl - $al) | length) as $exited | ($exited == 0) as $stable |
        (($at - $bt) * 1e9 / $hz) as $stat_ns |
        {
          schedstat_ns: (if $bns < 0 or $ans < 0 then null else $ans - $bns end),
          wait_ns: (if $bw < 0 or $aw < 0 or ($stable | not) then null else $aw - $bw end),
          stat_ticks: ($at - $bt), clk_tck: $hz, stat_ns: $stat_ns,
          threads_before: $nb, threads_after: $na, threads_exited: $exited
        } |
        if .schedstat_ns != null and $stable
        then . + {cpu_ns: .schedstat_ns, source: "schedstat"}
        else . + {cpu_ns: $stat_ns, source: "stat"} end'
}

# cpu_attach BENCH_JSON CPU_JSON OUTFILE: the bench report with "server_cpu" added, where
# server_cpu.us_per_reply = cpu_ns / counts.replies / 1000 (null with no replies).
cpu_attach() {
    jq --argjson cpu "$2" '. + {server_cpu: ($cpu + {us_per_reply:
        (if .counts.replies > 0 then $cpu.cpu_ns / .counts.replies / 1000 else null end)})}' \
        "$1" >"$3"
}
