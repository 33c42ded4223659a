#!/usr/bin/env python3
"""Turns compare.sh's raw `radshard bench --json` reports into the comparison section of
perf/RESULTS.md: medians per cell, ratios, targets. Only the text between the section markers is
replaced; everything else in RESULTS.md is kept as it is."""
import argparse
import glob
import json
import os
import platform
import re
import statistics
import subprocess
from datetime import datetime, timezone

BEGIN = "<!-- BEGIN radshard-vs-freeradius (perf/compare.sh) -->"
END = "<!-- END radshard-vs-freeradius -->"

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("results")
for k in ["rounds", "secs", "fr-version", "fr-threads", "sockets", "window"]:
    ap.add_argument("--" + k, default="?")
a = ap.parse_args()

runs = {}
for f in glob.glob(os.path.join(a.out, "*.json")):
    m = re.match(r"(pinned|unpinned)-(\w+)-(freeradius|radshard)-(\d+)\.json", os.path.basename(f))
    if not m:
        continue
    with open(f) as fh:
        runs.setdefault(m.group(1, 2, 3), []).append(json.load(fh))


def med(key, field):
    rs = runs.get(key, [])
    if not rs:
        return None
    return statistics.median(field(r) for r in rs)


def cpu_us(r):
    return (r.get("server_cpu") or {}).get("us_per_reply")


def med_cpu(key):
    """Median server CPU µs per reply over the rounds that recorded it (reports from before
    compare.sh measured CPU have none)."""
    vals = [v for v in (cpu_us(r) for r in runs.get(key, [])) if v is not None]
    return statistics.median(vals) if vals else None


def fmt_cpu(v):
    return "—" if v is None else f"{v:.2f}"


def issues(key):
    t = 0
    for r in runs.get(key, []):
        c = r["counts"]
        t += c["timeouts"] + c["bad_authenticator"] + c["malformed"] + c["unmatched"] + c["unexpected"]
    return t


cpu = "?"
try:
    with open("/proc/cpuinfo") as fh:
        cpu = next(l.split(":", 1)[1].strip() for l in fh if l.startswith("model name"))
except (OSError, StopIteration):
    pass

targets = {("pinned", "pap"): 2.5, ("unpinned", "pap"): 2.0, ("pinned", "acct"): 2.0, ("unpinned", "acct"): 2.0}
names = {"pap": "PAP accept", "reject": "PAP reject", "acct": "accounting"}
lines = [BEGIN, "## radshard vs FreeRADIUS (perf/compare.sh)", ""]
lines.append(
    f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} × {cpu}, "
    f"Linux {platform.release()}; FreeRADIUS {a.fr_version} ({a.fr_threads} worker threads). "
    f"{a.rounds} alternating rounds × {a.secs} s per cell, closed loop, `--sockets {a.sockets} "
    f"--window {a.window}`, median of the rounds. *pinned*: server `taskset -c 0` (radshard "
    f"`--shards 1`), loader `taskset -c 1`; *unpinned*: neither (radshard one shard per core). "
    f"Reproduce: `ROUNDS={a.rounds} SECS={a.secs} perf/compare.sh`."
)
loads = []
try:
    with open(os.path.join(a.out, "loadavg.txt")) as fh:
        loads = [float(l.split()[1]) for l in fh if l.strip()]
except (OSError, ValueError, IndexError):
    pass
if loads:
    lines.append(
        f"1-minute load average just before the measured runs (other work on the box included): "
        f"median {statistics.median(loads):.2f}, max {max(loads):.2f}."
    )
lines.append(
    "Server CPU µs/req: the server process's CPU time during the measured run, summed over all "
    "its threads (`/proc/PID/task/*/schedstat`, read just before and just after the `bench` run; "
    "FreeRADIUS's workers included; utime+stime from `/proc/PID/stat` instead if one of its threads "
    "exited during the run), divided by the replies counted."
)
lines += ["", "| placement | workload | FreeRADIUS req/s | radshard req/s | ratio | target | FR CPU µs/req | radshard CPU µs/req | rounds FR / radshard (req/s) | timeouts+bad+unexpected (FR / rs) |",
          "|---|---|---:|---:|---:|---|---:|---:|---|---|"]


def rounds(key):
    return ", ".join(f"{r['requests_per_s'] / 1000:.1f}k" for r in runs.get(key, []))


for placement in ["pinned", "unpinned"]:
    for w in ["pap", "reject", "acct"]:
        fr = med((placement, w, "freeradius"), lambda r: r["requests_per_s"])
        rs = med((placement, w, "radshard"), lambda r: r["requests_per_s"])
        if fr is None or rs is None:
            continue
        ratio = rs / fr if fr else float("inf")
        t = targets.get((placement, w))
        verdict = "" if t is None else (f"≥ {t}× **met**" if ratio >= t else f"≥ {t}× **missed**")
        lines.append(
            f"| {placement} | {names[w]} | {fr:,.0f} | {rs:,.0f} | {ratio:.2f}× | {verdict} | "
            f"{fmt_cpu(med_cpu((placement, w, 'freeradius')))} | {fmt_cpu(med_cpu((placement, w, 'radshard')))} | "
            f"{rounds((placement, w, 'freeradius'))} / {rounds((placement, w, 'radshard'))} | "
            f"{issues((placement, w, 'freeradius'))} / {issues((placement, w, 'radshard'))} |"
        )
p99_rates = sorted({int(k[1].split("_", 1)[1]) for k in runs if k[0] == "pinned" and k[1].startswith("p99_")})
if p99_rates:
    lines += [
        "",
        "Latency at the same offered load (open loop, PAP, pinned; latency counted from when each "
        "request was due, so a server that falls behind the offered rate shows it), median of rounds:",
        "",
        "| offered req/s | server | achieved req/s | p50 µs | p99 µs | server CPU µs/req | rounds p99 µs | lower p99 |",
        "|---:|---|---:|---:|---:|---:|---|---|",
    ]
for rate in p99_rates:
    key = lambda srv: ("pinned", f"p99_{rate}", srv)
    vals = {}
    for srv in ["freeradius", "radshard"]:
        if key(srv) not in runs:
            continue
        vals[srv] = (
            med(key(srv), lambda r: r["requests_per_s"]),
            med(key(srv), lambda r: r["latency_us"]["p50"]),
            med(key(srv), lambda r: r["latency_us"]["p99"]),
            ", ".join(str(r["latency_us"]["p99"]) for r in runs[key(srv)]),
            med_cpu(key(srv)),
        )
    for srv, name in [("freeradius", "FreeRADIUS"), ("radshard", "radshard")]:
        if srv not in vals:
            continue
        ach, p50, p99, rr, cpu_med = vals[srv]
        verdict = ""
        if srv == "radshard" and "freeradius" in vals:
            verdict = "**met**" if p99 < vals["freeradius"][2] else "**missed**"
        lines.append(f"| {rate:,} | {name} | {ach:,.0f} | {p50:.0f} | {p99:.0f} | {fmt_cpu(cpu_med)} | {rr} | {verdict} |")
lines.append(END)
section = "\n".join(lines) + "\n"

text = ""
if os.path.exists(a.results):
    with open(a.results) as fh:
        text = fh.read()
if BEGIN in text and END in text:
    pre, rest = text.split(BEGIN, 1)
    post = rest.split(END, 1)[1].lstrip("\n")
    text = pre + section + ("\n" + post if post else "")
else:
    if not text:
        text = "# Performance results\n\n"
    text = text.rstrip("\n") + "\n\n" + section
with open(a.results, "w") as fh:
    fh.write(text)
print(section)
