#!/usr/bin/env python3
"""Medians from results/raw.jsonl (raw values are KiB from /proc; printed in MiB); prints a markdown table."""
import json, statistics, sys
path = sys.argv[1] if len(sys.argv) > 1 else "results/raw.jsonl"
rows = [json.loads(l) for l in open(path) if l.strip()]
def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None
def mib(kb): return "—" if kb is None else f"{kb/1024:.1f}"
bins = []
for r in rows:
    if r["bin"] not in bins: bins.append(r["bin"])
t = {}
problems = []
for b in bins:
    L = [r for r in rows if r["bin"] == b and r["phase"] == "load"]
    H = [r for r in rows if r["bin"] == b and r["phase"] == "hold"]
    d = {
        "idle": med([r["idle_rss_kb"] for r in L]),
        "idle_anon": med([r.get("idle_anon_kb") for r in L]),
        "load": med([r["load_rss_kb"] for r in L]),
        "load_hwm": med([r["load_hwm_kb"] for r in L]),
        "load_anon": med([r.get("load_anon_kb") for r in L]),
        "threads": med([r["load_threads"] if r["load_threads"] is not None else r["idle_threads"] for r in L]),
        "hold": med([r["hold"]["rss_held"]["VmRSS"] for r in H]) if H else None,
        "hold_anon": med([r["hold"]["rss_held"]["RssAnon"] for r in H]) if H else None,
        "hold_hwm": med([r["hold"]["rss_held"]["VmHWM"] for r in H]) if H else None,
        "after_close": med([r["hold"].get("rss_after_close", {}).get("VmRSS") for r in H]) if H else None,
        "n": len(L), "nh": len(H),
    }
    for r in L:
        if not r["alive"]: problems.append(f"{b} run {r['run']}: process died")
        for k in ("seq", "conc"):
            if r[k] and r[k]["ok"] != r[k]["n"]: problems.append(f"{b} run {r['run']} {k}: {r[k]['ok']}/{r[k]['n']} ok {r[k]['errors']}")
    for r in H:
        h = r["hold"]
        if not r["alive"]: problems.append(f"{b} hold run {r['run']}: process died")
        if h["ok"] != h["n"]: problems.append(f"{b} hold run {r['run']}: {h['ok']}/{h['n']} answered {h['errors']}")
    t[b] = d
print("| binary | runs | RSS idle | RSS after 200 seq + 100 conc | peak (VmHWM) | anon idle / after load | RSS, 1000 conns held | anon, 1000 held | RSS 2 s after closing them |")
print("|---|---|---|---|---|---|---|---|---|")
for b in bins:
    d = t[b]
    print(f"| {b} | {d['n']} | {mib(d['idle'])} | {mib(d['load'])} | {mib(d['load_hwm'])} | {mib(d['idle_anon'])} / {mib(d['load_anon'])} | {mib(d['hold'])} | {mib(d['hold_anon'])} | {mib(d['after_close'])} |")
def diff(a, b, k):
    if t.get(a, {}).get(k) is None or t.get(b, {}).get(k) is None: return "—"
    return f"{(t[a][k]-t[b][k])/1024:+.1f}"
print()
for a, b in [("flyingfox", "baseline"), ("flyingfox", "baseline_curl"), ("flyingfox", "baseline_async"), ("flyingfox", "baseline_net"), ("baseline_async", "baseline_curl"), ("baseline_net", "baseline"), ("baseline_curl", "baseline")]:
    if a in t and b in t:
        print(f"{a} - {b}: idle {diff(a,b,'idle')} MiB, after load {diff(a,b,'load')} MiB, 1000 held {diff(a,b,'hold')} MiB, after close {diff(a,b,'after_close')} MiB")
print()
print("problems:", problems or "none")
