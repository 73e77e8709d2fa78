#!/usr/bin/env python3
"""Summarise a tricolor heap-trace dump and draw its plots.

A dump is JSON Lines (one event per line) written by a program run with
TRICOLOR_HEAPTRACE=path or gc_options.heap_trace; docs/tracing.md describes every event.

    report.py DUMP [-o DIR] [--no-plots] [--json] [--top N] [--strict]

prints a summary (cycles, forced cycles and their reasons, pause percentiles, GC CPU
fraction, peak heap, the sweep, the types that fill the heap) and writes PNG plots into DIR:

    heap.png          heap in use, live heap, goal and trigger over time
    pauses.png        every stop-the-world pause over time, and their distribution
    gc_cpu.png        the collector's share of the CPU over time, and its parts per cycle
    size_classes.png  occupancy by size class at the last cycle, and over all cycles
    types.png         in-use bytes by type (the sampled objects the sweep has not freed)
                      at the peak and over time, and allocated bytes by type

A line that is truncated or not valid JSON is reported with its line number (on stderr,
and under "problems" in the JSON summary); the rest of the dump is still summarised.
Exit status: 0 on success (problems are warnings unless --strict), 1 with --strict if a
line had a problem, 2 if the dump cannot be read or its format version is unknown.
"""

import argparse
import json
import math
import os
import sys
from collections import defaultdict

SUPPORTED_VERSIONS = (1,)
KNOWN_EVENTS = ("start", "cycle_begin", "pause", "cycle_end", "sweep_done", "scavenge",
                "alloc_sample", "free_sample", "oom", "end")
# Members an event must have to be used (beyond "v", "ev" and "t_ns").
REQUIRED = {
    "start": ("procs", "gogc", "memory_limit", "classes"),
    "cycle_begin": ("cycle", "reason", "heap_live", "trigger", "goal"),
    "pause": ("cycle", "phase", "ns"),
    "cycle_end": ("cycle", "reason", "heap_start", "heap_end", "heap_marked", "goal",
                  "trigger", "wall_ns", "cpu_ns", "pause_ns", "gc_cpu_fraction",
                  "heap_sys", "heap_inuse", "heap_alloc", "classes"),
    "sweep_done": ("cycle", "wall_ns", "spans_swept", "bytes_freed"),
    "scavenge": ("released", "heap_released", "reason"),
    "alloc_sample": ("type", "size", "weight"),
    "free_sample": ("id", "type", "weight"),
    "oom": ("request", "limit"),
    "end": ("num_gc", "pause_total_ns", "gc_cpu_fraction"),
}
# Members that are text, tables ("classes") or maps (a cycle_end's wall_ns and cpu_ns);
# every other member named in REQUIRED (and t_ns) is a number. Members read when present (OPTIONAL) are checked the same way.
STRINGS = ("reason", "phase", "type")
OPTIONAL = {"start": ("page_size", "sample_bytes"), "cycle_end": ("restarts",)}
# Rows of the "classes" tables: [class, size, pages] in start, [class, spans, objects, free]
# in cycle_end.
CLASS_ROW = {"start": 3, "cycle_end": 4}
MIB = 1 << 20


class DumpError(Exception):
    """The dump cannot be summarised at all (unreadable, unknown version)."""


# ---- Reading ---------------------------------------------------------------------------

class Dump:
    """The events of a dump, by kind, and the problems found while reading it."""

    def __init__(self):
        self.version = None
        self.start = None
        self.end = None
        self.events = defaultdict(list)  # ev -> [event dict]
        self.problems = []               # [(line number, message)]
        self.unknown_events = defaultdict(int)
        self.lines = 0

    def problem(self, lineno, msg):
        self.problems.append((lineno, msg))


def is_number(x):
    """A finite JSON number a dump can hold (the writer's are 64-bit): not a bool, NaN, an
    infinity or an integer beyond 2^64."""
    if isinstance(x, bool):
        return False
    if isinstance(x, int):
        return abs(x) <= 2**64  # compared as an int: float(10**400) would raise
    return isinstance(x, float) and math.isfinite(x) and abs(x) <= 2.0**64


def show(x):
    """A member's value for a message, cut short."""
    r = json.dumps(x) if not isinstance(x, float) or math.isfinite(x) else repr(x)
    return r if len(r) <= 40 else r[:37] + "..."


def member_problem(kind, ev):
    """Why an event's members cannot be used (a wrong type, a value out of range), or None."""
    for k in REQUIRED[kind] + ("t_ns",) + tuple(k for k in OPTIONAL.get(kind, ()) if k in ev):
        v = ev[k]
        if k in STRINGS:
            if not isinstance(v, str):
                return f"\"{k}\" is not a string: {show(v)}"
        elif k == "classes":
            width = CLASS_ROW[kind]
            if not isinstance(v, list):
                return f"\"classes\" is not a list: {show(v)}"
            for row in v:
                if not (isinstance(row, list) and len(row) >= width
                        and all(is_number(x) for x in row[:width])):
                    return f"\"classes\" has a row that is not {width} numbers: {show(row)}"
        elif kind == "cycle_end" and k in ("wall_ns", "cpu_ns"):  # times by phase
            if not (isinstance(v, dict) and all(is_number(x) for x in v.values())):
                return f"\"{k}\" is not a map of numbers: {show(v)}"
        elif not is_number(v):
            return f"\"{k}\" is not a number a dump can hold: {show(v)}"
    return None


def read_dump(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DumpError(f"cannot read {path}: {e.strerror}") from e
    d = Dump()
    if not data:
        raise DumpError(f"{path} is empty: not a heap-trace dump")
    lines = data.split(b"\n")
    complete = data.endswith(b"\n")
    if complete:
        lines.pop()  # the empty string after the last newline
    d.lines = len(lines)
    for i, raw in enumerate(lines, start=1):
        last = i == len(lines)
        if not raw.strip():
            d.problem(i, "empty line")
            continue
        text = raw.decode("utf-8", errors="replace")
        try:
            ev = json.loads(text)
        except ValueError as e:
            if last and not complete:
                d.problem(i, f"truncated: the dump ends in the middle of this line ({e.msg})")
            else:
                d.problem(i, f"not valid JSON: {e.msg} at column {e.colno}")
            continue
        if not isinstance(ev, dict) or "ev" not in ev or "v" not in ev:
            d.problem(i, "not a heap-trace event (no \"v\" or \"ev\" member)")
            continue
        v = ev["v"]
        if d.version is None:
            if isinstance(v, bool) or v not in SUPPORTED_VERSIONS:
                raise DumpError(
                    f"{path}: line {i}: dump format version {v!r} is not supported "
                    f"(this report reads version{'s' if len(SUPPORTED_VERSIONS) > 1 else ''} "
                    f"{', '.join(map(str, SUPPORTED_VERSIONS))}); use the report.py of the "
                    f"tricolor release that wrote the dump")
            d.version = v
        elif isinstance(v, bool) or v != d.version:
            d.problem(i, f"format version {show(v)} differs from the dump's version {d.version}")
            continue
        kind = ev["ev"]
        if not isinstance(kind, str):
            d.problem(i, f"\"ev\" is not an event name: {show(kind)}")
            continue
        if kind not in KNOWN_EVENTS:
            d.unknown_events[kind] += 1
            continue
        missing = [k for k in REQUIRED[kind] + ("t_ns",) if k not in ev]
        if missing:
            d.problem(i, f"{kind} event without {', '.join(missing)}")
            continue
        why = member_problem(kind, ev)
        if why:
            d.problem(i, f"{kind} event: {why}")
            continue
        ev["_line"] = i
        if kind == "start":
            if d.start is not None:
                d.problem(i, "a second start event (two dumps in one file?); ignored")
                continue
            d.start = ev
        elif kind == "end":
            d.end = ev
        d.events[kind].append(ev)
    if d.version is None:
        first = f" ({path}:{d.problems[0][0]}: {d.problems[0][1]})" if d.problems else ""
        raise DumpError(f"{path}: no valid heap-trace event in {d.lines} line(s){first}")
    if d.start is None:
        d.problem(1, "no start event: the beginning of the dump is missing")
    if d.end is None:
        d.problem(d.lines, "no end event: the program was still running or was killed "
                  "(the dump may be incomplete)")
    return d


# ---- Summary -----------------------------------------------------------------------------

def percentile(sorted_values, p):
    """Nearest-rank percentile of an already sorted list (p in 0..100)."""
    if not sorted_values:
        return 0
    k = max(0, math.ceil(p / 100.0 * len(sorted_values)) - 1)
    return sorted_values[min(k, len(sorted_values) - 1)]


def cycle_cpu_ns(e):
    c = e["cpu_ns"]
    # Go's GC CPU excludes idle marking: sweep termination + assists + background + mark
    # termination.
    return (c.get("sweep_term", 0) + c.get("assist", 0) + c.get("background", 0)
            + c.get("mark_term", 0))


def type_totals(d):
    by_type = defaultdict(lambda: [0, 0])  # type -> [weight bytes, samples]
    for s in d.events["alloc_sample"]:
        t = by_type[s["type"]]
        t[0] += s["weight"]
        t[1] += 1
    return by_type


def tracks_frees(d):
    """Whether the dump says when sampled objects are freed: its samples carry an id (older
    writers of format 1 wrote neither ids nor free_sample events)."""
    return any("id" in s for s in d.events["alloc_sample"])


def inuse_timeline(d):
    """In-use bytes by type over time, from the samples: an alloc_sample adds its weight, the
    free_sample of the same id takes it back. Returns (times in ns, [{type: bytes}] after
    each event, the index of the peak, where the sampled in-use bytes were largest)."""
    events = sorted(d.events["alloc_sample"] + d.events["free_sample"],
                    key=lambda e: (e["t_ns"], e["_line"]))
    live = {}                # id -> (type, weight) of the sampled objects not yet freed
    now = defaultdict(int)
    times, states = [0], [{}]
    peak, peak_total = 0, 0
    for e in events:
        if e["ev"] == "alloc_sample":
            if "id" in e:
                live[e["id"]] = (e["type"], e["weight"])
            now[e["type"]] += e["weight"]
        else:
            t, w = live.pop(e["id"], (e["type"], e["weight"]))
            now[t] = max(now[t] - w, 0)
        times.append(e["t_ns"])
        states.append({t: b for t, b in now.items() if b})
        total = sum(now.values())
        if total > peak_total:
            peak, peak_total = len(states) - 1, total
    return times, states, peak


def type_rows(d):
    """One row per type: allocated bytes and samples, and (if the dump tracks frees) the
    in-use bytes at the peak and at the end. Sorted by in-use bytes at the peak (allocated
    bytes without free tracking)."""
    totals = type_totals(d)
    allocated = sum(w for w, _ in totals.values())
    frees = tracks_frees(d)
    times, states, peak = inuse_timeline(d) if frees else ([0], [{}], 0)
    at_peak, at_end = states[peak], states[-1]
    peak_total = sum(at_peak.values())
    rows = []
    for t, (w, n) in totals.items():
        row = {"type": t, "alloc_bytes": w, "alloc_share": w / allocated if allocated else 0.0,
               "samples": n}
        if frees:
            b = at_peak.get(t, 0)
            row.update({"inuse_bytes": b, "inuse_share": b / peak_total if peak_total else 0.0,
                        "inuse_end_bytes": at_end.get(t, 0)})
        rows.append(row)
    key = "inuse_bytes" if frees else "alloc_bytes"
    rows.sort(key=lambda r: (-r[key], -r["alloc_bytes"], r["type"]))
    return rows, frees, (times[peak] if frees else None)


def summarise(d, path, top=10):
    ends = sorted(d.events["cycle_end"], key=lambda e: e["cycle"])
    pauses = d.events["pause"]
    start = d.start or {}
    last_t = max((e["t_ns"] for evs in d.events.values() for e in evs), default=0)
    duration_ns = d.end["t_ns"] if d.end else last_t
    reasons = defaultdict(int)
    for e in ends:
        reasons[e["reason"]] += 1
    forced = {r: n for r, n in reasons.items() if r != "heap"}
    pause_ns = sorted(p["ns"] for p in pauses)
    per_cycle_pause = sorted(e["pause_ns"] for e in ends)
    by_phase = defaultdict(list)
    for p in pauses:
        by_phase[p["phase"]].append(p["ns"])
    if d.end:
        gc_cpu = d.end["gc_cpu_fraction"]
    elif ends:
        gc_cpu = ends[-1]["gc_cpu_fraction"]
    else:
        gc_cpu = 0.0
    peak = {
        "heap_inuse": max((e["heap_inuse"] for e in ends), default=0),
        "heap_sys": max((e["heap_sys"] for e in ends), default=0),
        "heap_live_at_mark_end": max((e["heap_end"] for e in ends), default=0),
        "heap_marked": max((e["heap_marked"] for e in ends), default=0),
        "goal": max((e["goal"] for e in ends), default=0),
    }
    for b in d.events["cycle_begin"]:
        peak["heap_live_at_mark_end"] = max(peak["heap_live_at_mark_end"], b["heap_live"])
    types, frees, inuse_peak_ns = type_rows(d)
    scav = d.events["scavenge"]
    sweeps = sorted(d.events["sweep_done"], key=lambda e: e["cycle"])
    sweep_wall = sorted(e["wall_ns"] for e in sweeps)

    def pstats(values):
        return {"count": len(values), "p50_ns": percentile(values, 50),
                "p90_ns": percentile(values, 90), "p99_ns": percentile(values, 99),
                "max_ns": values[-1] if values else 0, "total_ns": sum(values)}

    return {
        "dump": path,
        "version": d.version,
        "procs": start.get("procs"),
        "gogc": start.get("gogc"),
        "memory_limit": start.get("memory_limit"),
        "duration_s": duration_ns / 1e9,
        "complete": d.end is not None,
        "cycles": len(ends),
        "cycles_by_reason": dict(sorted(reasons.items())),
        "forced_cycles": sum(forced.values()),
        "forced_reasons": dict(sorted(forced.items())),
        "mark_restarts": sum(e.get("restarts", 0) for e in ends),
        "pauses": pstats(pause_ns),
        "pauses_by_phase": {ph: pstats(sorted(v)) for ph, v in sorted(by_phase.items())},
        "pause_per_cycle": pstats(per_cycle_pause),
        "gc_cpu_fraction": gc_cpu,
        "peak": peak,
        "scavenged_bytes": sum(s["released"] for s in scav),
        "scavenges": len(scav),
        "oom_events": len(d.events["oom"]),
        "sweeps": {"count": len(sweeps), "p50_wall_ns": percentile(sweep_wall, 50),
                   "max_wall_ns": sweep_wall[-1] if sweep_wall else 0,
                   "cpu_ns": sum(e.get("cpu_ns", 0) for e in sweeps),
                   "by": sweep_by(sweeps)},
        "alloc_samples": len(d.events["alloc_sample"]),
        "free_samples": len(d.events["free_sample"]),
        "sample_bytes": start.get("sample_bytes"),
        "types_inuse": frees,
        "types_inuse_peak_s": inuse_peak_ns / 1e9 if inuse_peak_ns is not None else None,
        "types": types[:top] if top else types,
        "types_total": len(types),
        "unknown_events": dict(d.unknown_events),
        "problems": [{"line": ln, "message": m} for ln, m in d.problems],
    }


def sweep_by(sweeps):
    by = defaultdict(int)
    for e in sweeps:
        by[e.get("by", "?")] += 1
    return dict(sorted(by.items()))


def fmt_bytes(b):
    if b is None:
        return "?"
    for unit, size in (("GiB", 1 << 30), ("MiB", MIB), ("KiB", 1 << 10)):
        if b >= size:
            return f"{b / size:.1f} {unit}"
    return f"{b} B"


def fmt_ms(ns):
    ms = ns / 1e6
    return f"{ms:.3f} ms" if ms < 10 else f"{ms:.1f} ms"


def print_summary(s, out):
    w = out.write
    limit = s["memory_limit"]
    gogc = s["gogc"]
    w(f"heap trace {s['dump']} (format v{s['version']}): {s['procs']} P, "
      f"GOGC={'off' if gogc is not None and gogc < 0 else gogc}, "
      f"memory limit {fmt_bytes(limit) if limit else 'none'}\n")
    w(f"duration     {s['duration_s']:.3f} s{'' if s['complete'] else ' (no end event)'}\n")
    forced = ", ".join(f"{r} {n}" for r, n in s["forced_reasons"].items())
    w(f"cycles       {s['cycles']} ({s['forced_cycles']} forced{': ' + forced if forced else ''}"
      f"; {s['mark_restarts']} mark termination restart(s))\n")
    p = s["pauses"]
    w(f"pauses       {p['count']} stop-the-world pauses: p50 {fmt_ms(p['p50_ns'])}, "
      f"p90 {fmt_ms(p['p90_ns'])}, p99 {fmt_ms(p['p99_ns'])}, max {fmt_ms(p['max_ns'])}, "
      f"total {fmt_ms(p['total_ns'])}\n")
    for ph, ps in s["pauses_by_phase"].items():
        w(f"  {ph:<18} {ps['count']:>6}: p50 {fmt_ms(ps['p50_ns'])}, p99 {fmt_ms(ps['p99_ns'])}, "
          f"max {fmt_ms(ps['max_ns'])}\n")
    pc = s["pause_per_cycle"]
    w(f"  per cycle          {pc['count']:>6}: p50 {fmt_ms(pc['p50_ns'])}, "
      f"p99 {fmt_ms(pc['p99_ns'])}, max {fmt_ms(pc['max_ns'])}\n")
    w(f"GC CPU       {100 * s['gc_cpu_fraction']:.2f}% of {s['procs']} P\n")
    pk = s["peak"]
    w(f"peak heap    in use (spans) {fmt_bytes(pk['heap_inuse'])}, allocated "
      f"{fmt_bytes(pk['heap_live_at_mark_end'])}, live (marked) {fmt_bytes(pk['heap_marked'])}, "
      f"goal {fmt_bytes(pk['goal'])}, arenas {fmt_bytes(pk['heap_sys'])}\n")
    w(f"scavenger    {fmt_bytes(s['scavenged_bytes'])} returned to the OS in "
      f"{s['scavenges']} pass(es)\n")
    sw = s["sweeps"]
    if sw["count"]:
        by = ", ".join(f"{k} {n}" for k, n in sw["by"].items())
        w(f"sweep        {sw['count']} cycle(s) swept: wall p50 {fmt_ms(sw['p50_wall_ns'])}, "
          f"max {fmt_ms(sw['max_wall_ns'])}; sweeper CPU {fmt_ms(sw['cpu_ns'])} "
          f"(finished by: {by})\n")
    if s["oom_events"]:
        w(f"out of memory {s['oom_events']} time(s)\n")
    if s["types"]:
        per = fmt_bytes(s["sample_bytes"]) if s["sample_bytes"] else "?"
        est = (f"estimated from {s['alloc_samples']} samples (about one per {per}), "
               f"{s['free_samples']} freed")
        if s["types_inuse"]:
            w(f"types        in-use bytes by type at the peak ({s['types_inuse_peak_s']:.3f} s), "
              f"{est}:\n")
            w(f"  {'share':>7}  {'in use':>10}  {'at end':>10}  {'allocated':>10}  type\n")
            for t in s["types"]:
                w(f"  {100 * t['inuse_share']:6.1f}%  {fmt_bytes(t['inuse_bytes']):>10}  "
                  f"{fmt_bytes(t['inuse_end_bytes']):>10}  {fmt_bytes(t['alloc_bytes']):>10}  "
                  f"{t['type']}\n")
        else:
            w(f"types        allocated bytes by type, {est} (this dump does not say when "
              f"sampled objects are freed: no in-use bytes):\n")
            for t in s["types"]:
                w(f"  {100 * t['alloc_share']:6.1f}%  {fmt_bytes(t['alloc_bytes']):>10}  "
                  f"{t['type']}\n")
        if s["types_total"] > len(s["types"]):
            w(f"  ... and {s['types_total'] - len(s['types'])} more type(s)\n")
    else:
        w("types        no allocation samples (less than one sample's worth allocated)\n")
    if s["unknown_events"]:
        w("skipped      unknown events: "
          + ", ".join(f"{k} x{n}" for k, n in s["unknown_events"].items()) + "\n")
    if s["problems"]:
        w(f"problems     {len(s['problems'])} line(s) could not be used (see stderr)\n")


# ---- Plots -------------------------------------------------------------------------------

def load_pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise DumpError(
            f"matplotlib is not available to {sys.executable} ({e}); install it "
            f"(Debian: apt-get install python3-matplotlib, then run report.py with "
            f"/usr/bin/python3) or pass --no-plots") from e
    return plt


def secs(t_ns):
    return t_ns / 1e9


def no_data(ax, what):
    ax.text(0.5, 0.5, f"no {what} in this dump", ha="center", va="center",
            transform=ax.transAxes, color="0.4")


def finish(fig, path, written):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    written.append(path)


def plot_heap(plt, d, outdir, written):
    ends = sorted(d.events["cycle_end"], key=lambda e: e["cycle"])
    begins = {b["cycle"]: b for b in d.events["cycle_begin"]}
    fig, ax = plt.subplots(figsize=(10, 5.5))
    if not ends:
        no_data(ax, "collection cycles")
    else:
        # The pacer's heap: grows from the marked heap after cycle N to the trigger, where
        # cycle N+1 begins, on to the heap at mark termination, then drops to the marked heap.
        xs, ys = [0.0], [0.0]
        for e in ends:
            b = begins.get(e["cycle"])
            if b:
                xs.append(secs(b["t_ns"]))
                ys.append(b["heap_live"] / MIB)
            xs.append(secs(e["t_ns"]))
            ys.append(e["heap_end"] / MIB)
            xs.append(secs(e["t_ns"]))
            ys.append(e["heap_marked"] / MIB)
        ax.plot(xs, ys, color="tab:blue", lw=1.2, label="heap allocated (pacer's heap_live)")
        t = [secs(e["t_ns"]) for e in ends]
        ax.plot(t, [e["heap_inuse"] / MIB for e in ends], "o-", ms=2.5, lw=1,
                color="tab:purple", label="heap in use (spans), at cycle end")
        ax.step(t, [e["heap_marked"] / MIB for e in ends], where="post", color="tab:green",
                lw=1.5, label="live heap (marked by the cycle)")
        goals = [e["goal"] / MIB for e in ends]
        if any(goals):
            ax.step(t, goals, where="post", color="tab:red", lw=1.5,
                    label="heap goal (for the next cycle)")
            ax.step(t, [e["trigger"] / MIB for e in ends], where="post", color="tab:orange",
                    lw=1, ls="--", label="trigger (next cycle starts)")
        ax.plot(t, [e["heap_sys"] / MIB for e in ends], color="0.5", lw=1, ls=":",
                label="arenas from the OS (heap_sys)")
        limit = (d.start or {}).get("memory_limit") or 0
        if limit:
            ax.axhline(limit / MIB, color="black", lw=1, ls="-.", label="memory limit")
        forced = [e for e in ends if e["reason"] != "heap"]
        if forced:
            ax.plot([secs(e["t_ns"]) for e in forced], [e["heap_end"] / MIB for e in forced],
                    "v", color="black", ms=6, label="forced cycle (user, periodic, ...)")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
    ax.set_title("Heap over time")
    ax.set_xlabel("time since gc_init (s)")
    ax.set_ylabel("MiB")
    ax.grid(alpha=0.3)
    finish(fig, os.path.join(outdir, "heap.png"), written)
    plt.close(fig)


def plot_pauses(plt, d, outdir, written):
    pauses = d.events["pause"]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7))
    if not pauses:
        no_data(ax1, "pauses")
        no_data(ax2, "pauses")
    else:
        colors = {"sweep_termination": "tab:blue", "mark_termination": "tab:red"}
        for phase in sorted({p["phase"] for p in pauses}):
            ps = [p for p in pauses if p["phase"] == phase]
            ax1.scatter([secs(p["t_ns"]) for p in ps], [p["ns"] / 1e6 for p in ps], s=10,
                        color=colors.get(phase, "tab:gray"), label=phase.replace("_", " "))
        ax1.set_ylim(bottom=0)
        ax1.legend(fontsize=8, loc="upper right")
        values = sorted(p["ns"] / 1e6 for p in pauses)
        lo = max(values[0], 1e-4)
        hi = max(values[-1], lo * 1.01)
        bins = [lo * (hi / lo) ** (i / 40) for i in range(41)]
        ax2.hist([max(v, lo) for v in values], bins=bins, color="tab:blue", alpha=0.8)
        ax2.set_xscale("log")
        for p, style in ((50, "--"), (99, "-."), (100, "-")):
            v = percentile(values, p)
            ax2.axvline(v, color="black", ls=style, lw=1,
                        label=f"{'max' if p == 100 else f'p{p}'} {v:.3f} ms")
        ax2.legend(fontsize=8, loc="upper right")
    ax1.set_title("Stop-the-world pauses over time")
    ax1.set_xlabel("time since gc_init (s)")
    ax1.set_ylabel("pause (ms)")
    ax1.grid(alpha=0.3)
    ax2.set_title(f"Pause distribution ({len(pauses)} pauses)")
    ax2.set_xlabel("pause (ms, log scale)")
    ax2.set_ylabel("number of pauses")
    ax2.grid(alpha=0.3)
    finish(fig, os.path.join(outdir, "pauses.png"), written)
    plt.close(fig)


def plot_gc_cpu(plt, d, outdir, written):
    ends = sorted(d.events["cycle_end"], key=lambda e: e["cycle"])
    procs = (d.start or {}).get("procs") or 1
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7))
    if not ends:
        no_data(ax1, "collection cycles")
        no_data(ax2, "collection cycles")
    else:
        t = [secs(e["t_ns"]) for e in ends]
        ax1.plot(t, [100 * e["gc_cpu_fraction"] for e in ends], color="tab:red", lw=1.5,
                 label="since gc_init (gc_cpu_fraction)")
        # Per interval: the cycle's CPU over the CPU available since the previous cycle end.
        prev, inter = 0, []
        for e in ends:
            span = max(e["t_ns"] - prev, 1)
            inter.append(100 * cycle_cpu_ns(e) / (span * procs))
            prev = e["t_ns"]
        ax1.plot(t, inter, "o", ms=3, color="tab:blue", alpha=0.7,
                 label="per cycle (its CPU / CPU available since the previous cycle)")
        ax1.axhline(25, color="0.5", ls=":", lw=1, label="25% (background mark goal)")
        ax1.set_ylim(0, min(100, max(30, max(inter) * 1.1)))
        ax1.legend(fontsize=8, loc="upper right")
        cycles = [e["cycle"] for e in ends]
        parts = [("sweep_term", "STW sweep termination", "tab:blue"),
                 ("background", "background mark workers", "tab:green"),
                 ("assist", "mark assists (mutators)", "tab:orange"),
                 ("idle", "idle mark", "tab:gray"),
                 ("mark_term", "STW mark termination", "tab:red")]
        bottom = [0.0] * len(ends)
        width = 0.8 if len(ends) < 200 else 1.0
        for key, label, color in parts:
            vals = [e["cpu_ns"].get(key, 0) / 1e6 for e in ends]
            if not any(vals):
                continue
            ax2.bar(cycles, vals, bottom=bottom, width=width, color=color, label=label)
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax2.legend(fontsize=8, loc="upper right")
    ax1.set_title(f"GC CPU over time ({procs} P)")
    ax1.set_xlabel("time since gc_init (s)")
    ax1.set_ylabel("share of the CPU (%)")
    ax1.grid(alpha=0.3)
    ax2.set_title("GC CPU time per cycle, by part")
    ax2.set_xlabel("cycle")
    ax2.set_ylabel("CPU time (ms)")
    ax2.grid(alpha=0.3, axis="y")
    finish(fig, os.path.join(outdir, "gc_cpu.png"), written)
    plt.close(fig)


def class_table(d):
    """size class -> (object size, pages per span) from the start event."""
    table = {}
    for row in (d.start or {}).get("classes", []):
        if isinstance(row, list) and len(row) >= 2:
            table[row[0]] = (row[1], row[2] if len(row) > 2 else None)
    return table


def class_bytes(e, table, page_size):
    """[(class, in-use bytes, free bytes)] at a cycle end. Large objects (class 0) have no
    fixed size: their bytes are what the spans in use hold beyond the small classes'."""
    rows, small_span_bytes = [], 0
    for row in e["classes"]:
        c, spans, objects, free = row[:4]
        if c == 0:
            continue
        size, npages = table.get(c, (0, None))
        rows.append((c, objects * size, free))
        if npages:
            small_span_bytes += spans * npages * page_size
    if any(row[0] == 0 for row in e["classes"]) and table:
        rows.append((0, max(e["heap_inuse"] - small_span_bytes, 0), 0))
    return sorted(rows)


def plot_size_classes(plt, d, outdir, written):
    ends = sorted(d.events["cycle_end"], key=lambda e: e["cycle"])
    table = class_table(d)
    page_size = (d.start or {}).get("page_size", 8192)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 10), gridspec_kw={"height_ratios": [1, 1.4]})

    def label(c):
        if c == 0:
            return "large"
        size = table.get(c, (0,))[0]
        return f"{size}" if size < 1024 else f"{size / 1024:g}K"

    if not ends:
        no_data(ax1, "collection cycles")
        no_data(ax2, "collection cycles")
    else:
        # The cycle that ended with the most spans in use shows the heap at its fullest.
        last = max(ends, key=lambda e: (e["heap_inuse"], e["cycle"]))
        rows = class_bytes(last, table, page_size)
        # Large objects last, after the small classes in size order.
        rows = [r for r in rows if r[0] != 0] + [r for r in rows if r[0] == 0]
        xs = list(range(len(rows)))
        used = [r[1] / MIB for r in rows]
        free = [r[2] / MIB for r in rows]
        ax1.bar(xs, used, color="tab:blue", label="bytes in objects")
        ax1.bar(xs, free, bottom=used, color="tab:orange", alpha=0.7,
                label="free slots in spans of the class")
        ax1.set_xticks(xs)
        ax1.set_xticklabels([label(r[0]) for r in rows], rotation=90, fontsize=7)
        ax1.legend(fontsize=8, loc="upper right")
        ax1.set_title(f"Occupancy by size class at the end of cycle {last['cycle']} "
                      f"(the most heap in use: {fmt_bytes(last['heap_inuse'])}; "
                      f"before its sweep)")
        # Heatmap: in-use bytes of every class over the cycles.
        classes = sorted({row[0] for e in ends for row in e["classes"]},
                         key=lambda c: (c == 0, c))
        index = {c: i for i, c in enumerate(classes)}
        grid = [[0.0] * len(ends) for _ in classes]
        for j, e in enumerate(ends):
            for c, used_b, _ in class_bytes(e, table, page_size):
                if c in index:
                    grid[index[c]][j] = used_b / MIB
        # A log colour scale: classes differ by orders of magnitude; empty cells stay dark.
        import matplotlib.colors as mcolors
        peak = max((v for row in grid for v in row), default=0)
        norm = None
        if peak > 0:
            floor = max(peak / 1e4, min(v for row in grid for v in row if v > 0))
            norm = mcolors.LogNorm(vmin=floor, vmax=peak, clip=True)
        cmap = plt.get_cmap("viridis").copy()
        cmap.set_bad("black")
        masked = [[(v if v > 0 else float("nan")) for v in row] for row in grid]
        im = ax2.imshow(masked, aspect="auto", origin="lower", cmap=cmap, norm=norm,
                        interpolation="nearest",
                        extent=(ends[0]["cycle"] - 0.5, ends[-1]["cycle"] + 0.5,
                                -0.5, len(classes) - 0.5))
        # Label every class when they fit, else every other one, always the large objects.
        step = max(1, math.ceil(len(classes) / 36))
        rows = list(range(len(classes) - 1, -1, -step))[::-1]
        ax2.set_yticks(rows)
        ax2.set_yticklabels([label(classes[i]) for i in rows], fontsize=7)
        cb = fig.colorbar(im, ax=ax2)
        cb.set_label("MiB in objects (log scale; black: none)")
    if ends:
        ax2.set_title("Bytes in objects by size class over the cycles")
    else:
        ax1.set_title("Occupancy by size class")
        ax2.set_title("Bytes in objects by size class over the cycles")
    ax1.set_xlabel("object size of the class (bytes)")
    ax1.set_ylabel("MiB")
    ax1.grid(alpha=0.3, axis="y")
    ax2.set_xlabel("cycle")
    ax2.set_ylabel("object size (bytes)")
    finish(fig, os.path.join(outdir, "size_classes.png"), written)
    plt.close(fig)


def type_bars(ax, names, values, color, xlabel):
    ys = list(range(len(names)))[::-1]
    ax.barh(ys, values, color=color)
    ax.set_yticks(ys)
    ax.set_yticklabels(names, fontsize=8)
    total = sum(values)
    for y, v in zip(ys, values):
        if total:
            ax.text(v, y, f" {100 * v / total:.0f}%", va="center", fontsize=8)
    ax.set_xlim(0, max(max(values, default=0) * 1.18, 1e-3))
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3, axis="x")


def plot_types(plt, d, outdir, written, top):
    samples = sorted(d.events["alloc_sample"], key=lambda s: s["t_ns"])
    rows, frees, peak_ns = type_rows(d)
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(17, 5.5),
                                        gridspec_kw={"width_ratios": [1, 1, 1.4]})
    per = (d.start or {}).get("sample_bytes")
    note = f"estimated from {len(samples)} samples" + (f", one per ~{per >> 10} KiB" if per else "")
    if not samples:
        for ax in (ax1, ax2, ax3):
            no_data(ax, "allocation samples")
    else:
        # The types shown: the top ones by in-use bytes at the peak (by allocated bytes when
        # the dump does not track frees); the rest are summed as "(other types)".
        shown = [r["type"] for r in rows[:top]]
        rest = rows[top:]
        names = shown + (["(other types)"] if rest else [])
        by_name = {r["type"]: r for r in rows}
        alloc = [by_name[t]["alloc_bytes"] / MIB for t in shown]
        alloc += [sum(r["alloc_bytes"] for r in rest) / MIB] if rest else []
        type_bars(ax2, names, alloc, "tab:gray", "MiB allocated")
        cmap = plt.get_cmap("tab10")
        colors = [cmap(i % 10) for i in range(len(names))]
        if frees:
            inuse = [by_name[t]["inuse_bytes"] / MIB for t in shown]
            inuse += [sum(r["inuse_bytes"] for r in rest) / MIB] if rest else []
            type_bars(ax1, names, inuse, "tab:blue", "MiB in use")
            times, states, _ = inuse_timeline(d)
            series = [[st.get(n, 0) / MIB for st in states] for n in shown]
            if rest:
                series.append([sum(b for t, b in st.items() if t not in shown) / MIB
                                for st in states])
            ax3.stackplot([secs(t) for t in times], series, labels=names, colors=colors,
                          alpha=0.85, step="post")
            ax3.axvline(secs(peak_ns), color="black", ls=":", lw=1, label="peak")
            ax3.set_title("In-use bytes by type over time (sampled objects not yet swept)",
                          fontsize=10)
            ax3.set_ylabel("MiB in use")
        else:
            no_data(ax1, "free_sample events (in-use bytes)")
            acc = defaultdict(float)
            xs, series = [0.0], {n: [0.0] for n in names}
            for smp in samples:
                n = smp["type"] if smp["type"] in shown else "(other types)"
                acc[n] += smp["weight"] / MIB
                xs.append(secs(smp["t_ns"]))
                for name in names:
                    series[name].append(acc[name])
            ax3.stackplot(xs, [series[n] for n in names], labels=names, colors=colors,
                          alpha=0.85)
            ax3.set_title("Allocated bytes by type, cumulative", fontsize=10)
            ax3.set_ylabel("MiB allocated")
        ax3.legend(fontsize=8, loc="upper left")
    peak = f" at the peak ({secs(peak_ns):.2f} s)" if frees and peak_ns is not None else ""
    ax1.set_title(f"In-use bytes by type{peak}\n({note})", fontsize=10)
    ax2.set_title(f"Allocated bytes by type\n({note})", fontsize=10)
    ax3.set_xlabel("time since gc_init (s)")
    ax3.grid(alpha=0.3)
    finish(fig, os.path.join(outdir, "types.png"), written)
    plt.close(fig)


def render_plots(d, outdir, top):
    plt = load_pyplot()
    os.makedirs(outdir, exist_ok=True)
    written = []
    plot_heap(plt, d, outdir, written)
    plot_pauses(plt, d, outdir, written)
    plot_gc_cpu(plt, d, outdir, written)
    plot_size_classes(plt, d, outdir, written)
    plot_types(plt, d, outdir, written, top)
    return written


# ---- Main --------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Summarise a tricolor heap-trace dump (JSON Lines) and plot it.")
    ap.add_argument("dump", help="the dump written with TRICOLOR_HEAPTRACE=path")
    ap.add_argument("-o", "--output", default="heaptrace-report", metavar="DIR",
                    help="directory for the PNG plots (default: %(default)s)")
    ap.add_argument("--no-plots", action="store_true", help="print the summary only")
    ap.add_argument("--json", action="store_true",
                    help="print the summary as one JSON object instead of text")
    ap.add_argument("--top", type=int, default=10, metavar="N",
                    help="types to list and plot (default: %(default)s)")
    ap.add_argument("--strict", action="store_true",
                    help="exit with status 1 if any line could not be used")
    args = ap.parse_args(argv)
    try:
        d = read_dump(args.dump)
        for lineno, msg in d.problems:
            print(f"{args.dump}:{lineno}: {msg}", file=sys.stderr)
        s = summarise(d, args.dump, args.top)
        plots = [] if args.no_plots else render_plots(d, args.output, args.top)
    except DumpError as e:
        print(f"report.py: error: {e}", file=sys.stderr)
        return 2
    s["plots"] = plots
    if args.json:
        json.dump(s, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_summary(s, sys.stdout)
        for p in plots:
            print(f"wrote {p}")
    return 1 if args.strict and d.problems else 0


if __name__ == "__main__":
    sys.exit(main())
