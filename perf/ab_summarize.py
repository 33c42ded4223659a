#!/usr/bin/env python3
"""Turns perf/ab.sh's raw reports ($OUT/<workload>-<A|B>-<round>.json, each a `radshard bench
--json` report with a "server_cpu" object added, plus $OUT/meta.json) into the "radshard
before/after (perf/ab.sh)" section of perf/RESULTS.md, and prints it. Only that section is
replaced; everything else in the file is kept as it is.

    perf/ab_summarize.py OUT RESULTS       # can be re-run on a kept OUT directory
"""
import glob
import json
import os
import platform
import re
import statistics
import sys

BEGIN = "<!-- BEGIN radshard-ab (perf/ab.sh) -->"
END = "<!-- END radshard-ab -->"
HEADING = "## radshard before/after (perf/ab.sh)"

out, results = sys.argv[1], sys.argv[2]
with open(os.path.join(out, "meta.json")) as fh:
    meta = json.load(fh)

runs = {}  # (workload, side) -> [(round, report)]
for f in glob.glob(os.path.join(out, "*.json")):
    m = re.fullmatch(r"(\w+)-(A|B)-(\d+)\.json", os.path.basename(f))
    if not m:
        continue
    with open(f) as fh:
        runs.setdefault((m.group(1), m.group(2)), []).append((int(m.group(3)), json.load(fh)))
for v in runs.values():
    v.sort(key=lambda x: x[0])


def rps(r):
    return r["requests_per_s"]


def cpu_us(r):
    return (r.get("server_cpu") or {}).get("us_per_reply")


def wait_pct(r):
    """Share of the run the server's threads spent runnable but waiting for a CPU."""
    w = (r.get("server_cpu") or {}).get("wait_ns")
    return None if w is None or not r.get("elapsed_s") else 100 * w / (r["elapsed_s"] * 1e9)


def med(key, field):
    vals = [field(r) for _, r in runs.get(key, [])]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def issues(key):
    t = 0
    for _, r in runs.get(key, []):
        c = r["counts"]
        t += c["timeouts"] + c["bad_authenticator"] + c["malformed"] + c["unmatched"] + c["unexpected"]
    return t


def listing(key, field, fmt):
    return ", ".join("—" if field(r) is None else fmt(field(r)) for _, r in runs.get(key, []))


def ratio(b, a):
    return None if a in (None, 0) or b is None else b / a


def f_ratio(x):
    return "—" if x is None else f"{x:.3f}"


cpu_model = "?"
try:
    with open("/proc/cpuinfo") as fh:
        cpu_model = next(l.split(":", 1)[1].strip() for l in fh if l.startswith("model name"))
except (OSError, StopIteration):
    pass

tol = float(meta.get("tolerance_pct", 5))
names = {"pap": "PAP accept", "acct": "accounting", "chap": "CHAP accept"}
a, b, ld = meta["a"], meta["b"], meta["loader"]
wl = " ".join(meta["workloads"])


def binline(tag, x):
    return f"* {tag}: `{x['path']}` — {x['label']} (sha256 {x['sha256_12']}…, mtime {x['mtime']}, `{x['version']}`)"


lines = [BEGIN, HEADING, ""]
lines.append(
    f"Measured {meta['started']} on {os.cpu_count()} × {cpu_model}, Linux {platform.release()}. "
    f"{meta['rounds']} round(s) × {meta['secs']} s per binary and workload, alternating which binary "
    f"goes first, each measured run after a {meta['warmup_s']} s warm-up on a freshly started "
    f"server; medians of the rounds. Reproduce: `BASE={a['path']} B={b['path']} "
    f"ROUNDS={meta['rounds']} SECS={meta['secs']} WORKLOADS=\"{wl}\" perf/ab.sh`."
)
lines += ["", binline("A (baseline)", a), binline("B (new)", b), binline("loader (both sides)", ld), ""]
lines += [
    f"Server: `{meta['server_cmd']}`. Loader: `{meta['loader_cmd']}` (MODE = the workload).",
    "",
    "*req/s*: verified replies per second, from the bench report. *CPU µs/req*: the server "
    "process's CPU time during the measured run (sum over its threads of "
    "`/proc/PID/task/*/schedstat` run time, read just before and just after the `bench` run) "
    "divided by the replies counted. *within*: B's req/s at least "
    f"{100 - tol:g} % of A's and B's CPU per request at most {100 + tol:g} % of A's. *waiting*: "
    "time the server's threads were runnable but not running (schedstat's second field, summed), "
    "as a share of the run: other processes on core 0 and the server's own threads queueing "
    "behind each other there (accounting's io_uring worker behind the shard), so compare it "
    "round with round and A with B; a round whose waiting stands out was disturbed.",
]
loads = []
try:
    with open(os.path.join(out, "loadavg.txt")) as fh:
        loads = [float(l.split()[1]) for l in fh if l.strip()]
except (OSError, ValueError, IndexError):
    pass
if loads:
    lines.append(
        f"1-minute load average just before the measured runs (other work on the box included): "
        f"median {statistics.median(loads):.2f}, max {max(loads):.2f}."
    )
sources = {}
for v in runs.values():
    for _, r in v:
        s = (r.get("server_cpu") or {}).get("source", "none")
        sources[s] = sources.get(s, 0) + 1
if set(sources) - {"schedstat"}:
    lines.append(
        "CPU source per run: " + ", ".join(f"{k} {n}" for k, n in sorted(sources.items()))
        + " (stat = utime+stime in clock ticks, used when one of the server's threads exited during a run)."
    )
if int(meta["rounds"]) < 3:
    lines.append(f"Only {meta['rounds']} round(s): not enough to tell a {tol:g} % change from noise on this machine.")
lines += [
    "",
    "| workload | req/s A | req/s B | B/A | CPU µs/req A | CPU µs/req B | B/A | B within "
    f"{tol:g} % | rounds req/s A / B | rounds CPU µs/req A / B | rounds waiting % A / B | timeouts+bad+unexpected A / B |",
    "|---|---:|---:|---:|---:|---:|---:|---|---|---|---|---|",
]
for w in meta["workloads"]:
    ka, kb = (w, "A"), (w, "B")
    if ka not in runs or kb not in runs:
        continue
    ra, rb = med(ka, rps), med(kb, rps)
    ca, cb = med(ka, cpu_us), med(kb, cpu_us)
    tr, cr = ratio(rb, ra), ratio(cb, ca)
    if tr is None or cr is None:
        verdict = "—"
    else:
        bad = []
        if tr < 1 - tol / 100:
            bad.append("req/s")
        if cr > 1 + tol / 100:
            bad.append("CPU")
        verdict = "yes" if not bad else "**no**: " + ", ".join(bad)
    fc = lambda x: "—" if x is None else f"{x:.2f}"
    lines.append(
        f"| {names.get(w, w)} | {ra:,.0f} | {rb:,.0f} | {f_ratio(tr)} | {fc(ca)} | {fc(cb)} | {f_ratio(cr)} | {verdict} | "
        f"{listing(ka, rps, lambda x: f'{x / 1000:.1f}k')} / {listing(kb, rps, lambda x: f'{x / 1000:.1f}k')} | "
        f"{listing(ka, cpu_us, lambda x: f'{x:.2f}')} / {listing(kb, cpu_us, lambda x: f'{x:.2f}')} | "
        f"{listing(ka, wait_pct, lambda x: f'{x:.1f}')} / {listing(kb, wait_pct, lambda x: f'{x:.1f}')} | "
        f"{issues(ka)} / {issues(kb)} |"
    )
lines.append(END)
section = "\n".join(lines) + "\n"

text = ""
if os.path.exists(results):
    with open(results) as fh:
        text = fh.read()
if BEGIN in text and END in text:
    pre, rest = text.split(BEGIN, 1)
    post = rest.split(END, 1)[1].lstrip("\n")
    text = pre + section + ("\n" + post if post else "")
elif re.search(r"^" + re.escape(HEADING) + r"\s*$", text, re.M):
    # The heading without markers (edited by hand): replace it up to the next section.
    m = re.search(r"^" + re.escape(HEADING) + r"\s*$", text, re.M)
    nxt = re.compile(r"^(## |<!-- )", re.M).search(text, m.end())
    post = text[nxt.start():] if nxt else ""
    text = text[: m.start()] + section + ("\n" + post if post else "")
else:
    if not text:
        text = "# Performance results\n\n"
    text = text.rstrip("\n") + "\n\n" + section
with open(results, "w") as fh:
    fh.write(text)
print(section)
