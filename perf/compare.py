#!/usr/bin/env python3
"""compare.py: how does tricolor compare with what one would use instead?

Builds the perf/ programs (a release build directory), builds the Go peers when a Go
toolchain is present, then runs every benchmark on every implementation, interleaved
(rep 1 of every impl, then rep 2, ...; the impl order rotates between reps), each run in
its own process. Reports the median of the runs: a table per benchmark with time, CPU
time, peak RSS, GC cycles, max / p99 pause, GC CPU, and the ratio of tricolor to each
peer; writes results.txt, results.json and plot.png to the output directory.

    python3 perf/compare.py --quick          # < 5 minutes on an idle 2-core machine
    python3 perf/compare.py --full           # the record (tens of minutes)
    python3 perf/compare.py --quick --only=gcbench,churn --reps=5

Implementations: tricolor; bdwgc (libgc-dev, GC_MALLOC, its parallel marker); glibc
malloc/free and mimalloc mi_malloc/mi_free (explicit frees: the manual-memory floor); go
(golang-1.19, the same shapes in perf/go, GOMAXPROCS = tricolor's procs; the fibers peer,
goroutines on perf/fibers.cc's workload, sets GOMAXPROCS itself).
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

PERF_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(PERF_DIR)

NATIVE = ["tricolor", "bdwgc", "malloc", "mimalloc"]
ALL_IMPLS = NATIVE + ["go"]

# Fields of a RESULT line that are figures of the run (the rest are labels).
LABELS = {"name", "impl", "unit"}
# The headline figure of a result: the first of these that it carries.
PRIMARY = ["ns_per_obj", "ns_per_store", "time_s", "value"]

# perf_fibers' figures beside those of its Go peer (gobench fibers), which prints the same
# figures under goroutine names: (what, unit, tricolor's name, Go's name).
FIBER_PAIRS = [
    ("switch: yield between 2, 1 P", "ns", "fiber_yield_switch", "goroutine_yield_switch"),
    ("spawn+run+join, one at a time", "ns", "fiber_spawn_join", "goroutine_spawn_join"),
    ("spawn+run+join, batch of 1000", "ns", "fiber_spawn_join_batch1000",
     "goroutine_spawn_join_batch1000"),
    ("binary-trees, 1 P", "s", "binary_trees_fibers_1p", "binary_trees_goroutines_1p"),
    ("binary-trees, 2 P", "s", "binary_trees_fibers_2p", "binary_trees_goroutines_2p"),
    ("binary-trees speed-up, 2 P / 1 P", "x", "binary_trees_fibers_speedup_2p",
     "binary_trees_goroutines_speedup_2p"),
]
# Rows with the same figure on both sides, not a cost: shown, not divided.
FIBER_SAME = [
    ("binary-trees depth", "levels", "binary_trees_depth", "binary_trees_goroutines_depth"),
    ("binary-trees checksum", "nodes", "binary_trees_checksum", "binary_trees_goroutines_checksum"),
]


class Bench:
    """One benchmark: a program, its arguments per mode, the impls it runs on."""

    def __init__(self, key, program, args, impls, ratio="subject_over_peer", subject="tricolor",
                 env=None, go_name=None, timeout=None, note="", gc_columns=True,
                 plain_output=False, pass_impl=True, command=None, derived=None, pairs=None,
                 same=None):
        self.key = key
        self.program = program        # perf/<program>.cc -> <build>/perf/perf_<program>
        self.args = args              # {"quick": [...], "full": [...]}
        self.impls = impls            # impl labels; "tricolor+gctrace" style labels use env
        self.ratio = ratio            # subject_over_peer, or peer_over_subject (overheads)
        self.subject = subject
        self.env = env or {}          # impl label -> extra environment
        self.go_name = go_name        # gobench sub-command, when a Go peer exists
        self.timeout = timeout or {"quick": 300, "full": 3600}
        self.note = note
        self.gc_columns = gc_columns  # False: the run's GC figures do not describe the result
        self.plain_output = plain_output  # `name value unit` lines instead of RESULT lines
        self.pass_impl = pass_impl        # the program takes --impl=
        self.command = command            # impl -> (ninja target, path in the build dir)
        # Plain-output figures computed per run from two others, when the program does not
        # print them: [(name, numerator, denominator, unit)].
        self.derived = derived or []
        # Plain-output benches whose subject and peer print the same figures under their own
        # names: [(what, unit, subject's name, peer's name)], one table row each with the
        # ratio subject / peer; `same` rows are shown side by side without a ratio.
        self.pairs = pairs
        self.same = same or []


def benches(have_fibers):
    b = [
        Bench("alloc-t1", "alloc", {"quick": ["--quick"], "full": []}, ALL_IMPLS, go_name="alloc",
              gc_columns=False, note="ns per object (thread CPU time), no collection in the timed window"),
        Bench("alloc-hot", "alloc", {"quick": ["--quick", "--batch-kb=64", "--rounds=300",
                                               "--sizes=8,16,64,256"],
                                     "full": ["--batch-kb=64", "--rounds=1000", "--sizes=8,16,64,256"]},
              NATIVE, gc_columns=False,
              note="64 KiB batches that stay in the caches: the allocation path itself "
                   "(ns per object, thread CPU time)"),
        Bench("alloc-t2", "alloc", {"quick": ["--quick", "--threads=2"], "full": ["--threads=2"]},
              ALL_IMPLS, go_name="alloc", gc_columns=False,
              note="2 threads allocating at once; ns per object per thread"),
        Bench("alloc-cleared", "alloc", {"quick": ["--quick", "--cleared"], "full": ["--cleared"]},
              NATIVE, gc_columns=False,
              note="as alloc-t1, every implementation handing out cleared memory (mi_zalloc, "
                   "calloc, GC_MALLOC, GC_MALLOC_ATOMIC + memset): the same work as tricolor's"),
        Bench("gcbench", "gcbench", {"quick": ["--quick"], "full": []}, ALL_IMPLS,
              go_name="gcbench", note="Boehm's GCBench (quick: stretch 16, long-lived 14)"),
        Bench("binary_trees-t1", "binary_trees", {"quick": ["--depth=16"], "full": ["--depth=21"]},
              ALL_IMPLS, go_name="binary_trees"),
        Bench("binary_trees-t2", "binary_trees",
              {"quick": ["--depth=16", "--threads=2"], "full": ["--depth=21", "--threads=2"]},
              ALL_IMPLS, go_name="binary_trees"),
        Bench("churn", "churn", {"quick": ["--live-mb=64", "--ops=500000"], "full": ["--live-mb=1024"]},
              ALL_IMPLS, go_name="churn",
              note="long-lived heap with pointer churn (full: 1 GiB live)"),
        Bench("mark-tree", "mark", {"quick": ["--quick"], "full": []}, ["tricolor", "bdwgc"],
              note="full collections of a 64 MiB tree that stays live: ms per collection"),
        Bench("mark-random", "mark", {"quick": ["--quick", "--shape=random"],
                                      "full": ["--shape=random"]}, ["tricolor", "bdwgc"],
              note="full collections of 4M nodes pointing at random nodes, all live"),
        Bench("write_barrier", "write_barrier", {"quick": ["--quick"], "full": []}, ["tricolor", "go"],
              go_name="write_barrier", gc_columns=False,
              note="ns per store: plain store, barrier off, barrier on (marking); "
                   "tricolor gc_write_ptr, Go's compiled barrier"),
        Bench("trace_overhead", "binary_trees", {"quick": ["--depth=16"], "full": ["--depth=21"]},
              ["tricolor", "tricolor+gctrace", "tricolor+heaptrace"], ratio="peer_over_subject",
              env={"tricolor+gctrace": {"TRICOLOR_GCTRACE": "1"},
                   "tricolor+heaptrace": {"TRICOLOR_HEAPTRACE": "{out}/heaptrace-{rep}.jsonl"}},
              note="binary-trees with tracing on vs off; ratios are traced / plain"),
    ]
    b.append(Bench("scheme_binary_trees", "scheme",
                   {"quick": [os.path.join(ROOT, "tools/scheme/examples/binary-trees.scm"), "14"],
                    "full": [os.path.join(ROOT, "tools/scheme/examples/binary-trees.scm"), "18"]},
                   ["tricolor", "bdwgc"], pass_impl=False,
                   command={"tricolor": "tools/scheme/scheme", "bdwgc": "tools/scheme/scheme-bdwgc"},
                   env={"tricolor": {"SCHEME_RESULT": "scheme_binary_trees"},
                        "bdwgc": {"SCHEME_RESULT": "scheme_binary_trees"}},
                   note="the example Scheme interpreter (tools/scheme) running binary-trees, "
                        "built on tricolor and on bdwgc"))
    if have_fibers:
        b.append(Bench("fibers", "fibers", {"quick": ["--quick"], "full": []}, ["tricolor", "go"],
                       go_name="fibers", gc_columns=False, plain_output=True, pass_impl=False,
                       derived=[("binary_trees_fibers_speedup_2p", "binary_trees_fibers_1p",
                                 "binary_trees_fibers_2p", "x")],
                       pairs=FIBER_PAIRS, same=FIBER_SAME,
                       note="fiber switch and spawn, binary-trees over fibers vs threads; "
                            "Go's goroutines on the same workload"))
    return b


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, **kw):
    log("$ " + " ".join(cmd))
    return subprocess.run(cmd, check=True, **kw)


# ---- Building ----------------------------------------------------------------------

def has_target(build_dir, path):
    """Whether the build defines the target that makes path (e.g. tools/scheme/scheme-bdwgc,
    which exists only when the build has bdwgc and the scheme_bdwgc option allows it)."""
    info = subprocess.run(["meson", "introspect", "--targets", build_dir],
                          capture_output=True, text=True, cwd=ROOT)
    if info.returncode != 0:
        return False
    want = os.path.realpath(os.path.join(build_dir, path))
    return any(os.path.realpath(f) == want
               for t in json.loads(info.stdout) for f in t.get("filename", []))


def build(build_dir, programs):
    if not os.path.exists(os.path.join(build_dir, "build.ninja")):
        run(["meson", "setup", build_dir, "--buildtype=release", "-Dtests=false"], cwd=ROOT)
    info = subprocess.run(["meson", "introspect", "--buildoptions", build_dir],
                          capture_output=True, text=True, cwd=ROOT)
    buildtype = "?"
    if info.returncode == 0:
        for opt in json.loads(info.stdout):
            if opt["name"] == "buildtype":
                buildtype = opt["value"]
    if buildtype != "release":
        log(f"warning: {build_dir} has buildtype={buildtype}; figures are meant for release "
            f"(meson configure {build_dir} --buildtype=release)")
    # Only the perf targets: the rest of the tree need not build for a comparison.
    targets = [f"perf/perf_{p}" for p in programs if p != "scheme"]
    if "scheme" in programs:
        targets += ["tools/scheme/scheme"]
        if has_target(build_dir, "tools/scheme/scheme-bdwgc"):
            targets += ["tools/scheme/scheme-bdwgc"]
    run(["ninja", "-C", build_dir, "-j2"] + targets, cwd=ROOT)
    return buildtype


def find_go(explicit):
    for cand in [explicit, shutil.which("go"), "/usr/lib/go-1.19/bin/go"]:
        if cand and os.path.exists(cand):
            return cand
    return None


def build_go(go, out):
    exe = os.path.join(out, "go", "gobench")
    env = dict(os.environ, GOCACHE=os.path.join(out, "go", "cache"), GOPROXY="off",
               GOFLAGS="-mod=mod", GO111MODULE="on")
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    run([go, "build", "-o", exe, "."], cwd=os.path.join(PERF_DIR, "go"), env=env)
    version = subprocess.run([go, "version"], capture_output=True, text=True).stdout.strip()
    return exe, version


# ---- Running -----------------------------------------------------------------------

def plain_name(prefix, name, unit):
    return f"{prefix}/{name}[{unit}]"


def parse_plain(stdout, prefix, derived=()):
    """`name value unit` lines (perf/fibers.cc) as results named <prefix>/<name>[<unit>],
    plus the `derived` figures (name = numerator / denominator) the run did not print."""
    results, by_name = [], {}
    for line in stdout.splitlines():
        tok = line.split()
        if len(tok) != 3:
            continue
        try:
            v = float(tok[1])
        except ValueError:
            continue
        results.append({"name": plain_name(prefix, tok[0], tok[2]), "value": v, "unit": tok[2]})
        by_name[tok[0]] = v
    for name, num, den, unit in derived:
        if name not in by_name and by_name.get(num) is not None and by_name.get(den):
            results.append({"name": plain_name(prefix, name, unit), "value": by_name[num] / by_name[den],
                            "unit": unit, "derived": f"{num} / {den}"})
    return results


def parse_results(stdout):
    results = []
    for line in stdout.splitlines():
        if not line.startswith("RESULT "):
            continue
        rec = {}
        for tok in line.split()[1:]:
            k, _, v = tok.partition("=")
            if k in LABELS:
                rec[k] = v
            else:
                try:
                    rec[k] = float(v)
                except ValueError:
                    rec[k] = v
        results.append(rec)
    return results


def loadavg():
    try:
        return os.getloadavg()[0]
    except OSError:
        return -1.0


def run_one(bench, impl, rep, mode, build_dir, gobench, out, procs):
    args = list(bench.args[mode])
    env = dict(os.environ, GOMAXPROCS=str(procs), TRICOLOR_PROCS=str(procs))
    for k, v in bench.env.get(impl, {}).items():
        env[k] = v.format(out=out, rep=rep)
    if impl == "go":
        cmd = [gobench, bench.go_name] + args
    elif bench.command:
        cmd = [os.path.join(build_dir, bench.command[impl.split("+")[0]])] + args
    else:
        base = impl.split("+")[0]
        cmd = [os.path.join(build_dir, "perf", "perf_" + bench.program)]
        cmd += ([f"--impl={base}"] if bench.pass_impl else []) + args
    load = loadavg()
    t0 = time.monotonic()
    status, stdout, stderr = "ok", "", ""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env,
                           timeout=bench.timeout[mode])
        stdout, stderr = p.stdout, p.stderr
        if p.returncode != 0:
            status = f"exit {p.returncode}"
    except subprocess.TimeoutExpired as e:
        status = f"timeout after {bench.timeout[mode]} s"
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        stderr = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
    results = parse_results(stdout)
    if not results and bench.plain_output:
        results = parse_plain(stdout, bench.key, bench.derived)
    if status == "ok" and not results:
        status = "no RESULT line"
    for r in results:
        r["impl"] = impl  # the label (tricolor+gctrace runs print impl=tricolor)
    return {"bench": bench.key, "impl": impl, "rep": rep, "cmd": " ".join(cmd),
            "status": status, "wall_s": time.monotonic() - t0, "loadavg": load,
            "results": results,
            "stderr_tail": stderr[-2000:] if status != "ok" else ""}


# ---- Summaries ---------------------------------------------------------------------

def primary_of(rec):
    for k in PRIMARY:
        if k in rec:
            return k
    return "time_s"


def medians(runs):
    """{(bench, name): {impl: {field: median}}} over the successful runs."""
    acc = {}
    for run_rec in runs:
        for r in run_rec["results"]:
            key = (run_rec["bench"], r["name"])
            by_impl = acc.setdefault(key, {}).setdefault(r["impl"], {})
            for k, v in r.items():
                if isinstance(v, float):
                    by_impl.setdefault(k, []).append(v)
    out = {}
    for key, impls in acc.items():
        out[key] = {}
        for impl, fields in impls.items():
            m = {k: statistics.median(v) for k, v in fields.items()}
            m["n"] = max(len(v) for v in fields.values())
            m["spread"] = {k: [min(v), max(v)] for k, v in fields.items()}
            out[key][impl] = m
    return out


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_num(v, unit=""):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}{unit}"
    if abs(v) >= 10:
        return f"{v:.1f}{unit}"
    return f"{v:.3g}{unit}"


def fmt_ratio(r):
    return "-" if r is None else f"{r:.2f}x"


STANDARD = {"name", "impl", "time_s", "cpu_s", "peak_rss_kb", "gc_cycles", "max_pause_us",
            "p99_pause_us", "pause_total_ms", "gc_cpu", "n", "spread", "check", "nodes"}
# Collector figures beyond the columns, hidden with them (gc_columns=False, manual peers).
GC_EXTRA = {"hist_max_pause_us"}


def tables(bench_list, med, runs):
    """Text tables, and the ratio records for JSON and the plot."""
    lines, ratios = [], []
    order = {b.key: i for i, b in enumerate(bench_list)}
    by_bench = {}
    for (bkey, name) in med:
        by_bench.setdefault(bkey, []).append(name)
    for b in bench_list:
        if b.key not in by_bench:
            continue
        lines.append("")
        lines.append(f"== {b.key}: {b.note}" if b.note else f"== {b.key}")
        if b.pairs is not None:
            pair_lines, pair_ratios = paired_table(b, med, by_bench[b.key])
            lines += pair_lines
            ratios += pair_ratios
            continue
        for name in by_bench[b.key]:  # in the order the programs print them
            rows = med[(b.key, name)]
            any_rec = next(iter(rows.values()))
            pk = primary_of(any_rec)
            subj = rows.get(b.subject)
            peers = [i for i in b.impls if i in rows and i != b.subject]
            head = (f"{'impl':<20}{pk:>12}{'cpu_s':>9}{'rss MiB':>9}{'cycles':>8}"
                    f"{'max pause':>11}{'p99 pause':>11}{'GC CPU':>8}  ratios {'vs peers' if b.ratio == 'subject_over_peer' else 'vs ' + b.subject}")
            lines.append(f"-- {name}")
            lines.append(head)
            for impl in b.impls:
                m = rows.get(impl)
                if not m:
                    continue
                rss = m.get("peak_rss_kb")
                rtxt = ""
                if impl != b.subject and subj:
                    if b.ratio == "subject_over_peer":
                        rt = ratio(subj.get(pk), m.get(pk))
                        rr = ratio(subj.get("peak_rss_kb"), m.get("peak_rss_kb"))
                        rc = ratio(subj.get("cpu_s"), m.get("cpu_s"))
                        who = f"{b.subject}/{impl}"
                    else:
                        rt = ratio(m.get(pk), subj.get(pk))
                        rr = ratio(m.get("peak_rss_kb"), subj.get("peak_rss_kb"))
                        rc = ratio(m.get("cpu_s"), subj.get("cpu_s"))
                        who = f"{impl}/{b.subject}"
                    rtxt = f"{pk} {fmt_ratio(rt)}, cpu {fmt_ratio(rc)}, rss {fmt_ratio(rr)}"
                    ratios.append({"bench": b.key, "name": name, "metric": pk, "ratio_of": who,
                                   "time_ratio": rt, "cpu_ratio": rc, "rss_ratio": rr,
                                   "max_pause_subject_us": subj.get("max_pause_us"),
                                   "max_pause_peer_us": m.get("max_pause_us")})
                gc = impl not in ("malloc", "mimalloc") and b.gc_columns
                gc_cpu = f"{100 * m['gc_cpu']:.1f}%" if gc and "gc_cpu" in m else "-"
                lines.append(
                    f"{impl:<20}{fmt_num(m.get(pk)):>12}{fmt_num(m.get('cpu_s')):>9}"
                    f"{fmt_num(rss / 1024 if rss else None):>9}"
                    f"{fmt_num(m.get('gc_cycles') if gc else None):>8}"
                    f"{fmt_num(m.get('max_pause_us') if gc else None, 'us'):>11}"
                    f"{fmt_num(m.get('p99_pause_us') if gc else None, 'us'):>11}"
                    f"{gc_cpu:>8}  {rtxt}")
                extra = {k: v for k, v in m.items() if k not in STANDARD and k != pk
                         and (gc or k not in GC_EXTRA)}
                if extra:
                    lines.append(" " * 20 + "  " + " ".join(f"{k}={fmt_num(v)}" for k, v in extra.items()))
            lines.append(f"   (median of {max(r.get('n', 0) for r in rows.values())} runs)")
    failed = [r for r in runs if r["status"] != "ok"]
    if failed:
        lines.append("")
        lines.append("== failed runs")
        for r in failed:
            lines.append(f"{r['bench']} {r['impl']} rep {r['rep']}: {r['status']}: {r['cmd']}")
            tail = r["stderr_tail"].strip().splitlines()[-3:]
            for t in tail:
                lines.append("    " + t)
    return lines, ratios


def paired_table(b, med, names):
    """The table of a bench with `pairs`: one row per figure, the subject's value beside the
    peer's and their ratio; then the figures that have no counterpart (the subject's thread
    peers, say), one impl per row."""
    peer = next((i for i in b.impls if i != b.subject), "go")
    lines = [f"{'figure':<34}{'unit':<7}{b.subject:>12}{peer:>12}  {b.subject}/{peer}"]
    ratios, shown, counts = [], set(), []

    def value(impl, name, unit):
        key = (b.key, plain_name(b.key, name, unit))
        shown.add(key[1])
        m = med.get(key, {}).get(impl)
        if m:
            counts.append(m["n"])
        return m.get("value") if m else None

    for what, unit, sname, pname in b.pairs:
        sv, pv = value(b.subject, sname, unit), value(peer, pname, unit)
        r = ratio(sv, pv)
        lines.append(f"{what:<34}{unit:<7}{fmt_num(sv):>12}{fmt_num(pv):>12}  {fmt_ratio(r)}")
        if r is not None:
            # Time-like pairs go to the plot (time_ratio); a speed-up is better when higher.
            cost = unit != "x"
            ratios.append({"bench": b.key, "name": plain_name(b.key, sname, unit), "metric": "value",
                           "ratio_of": f"{b.subject}/{peer}", "peer_name": pname,
                           "time_ratio": r if cost else None, "value_ratio": r,
                           "cpu_ratio": None, "rss_ratio": None,
                           "max_pause_subject_us": None, "max_pause_peer_us": None})
    for what, unit, sname, pname in b.same:
        sv, pv = value(b.subject, sname, unit), value(peer, pname, unit)
        mark = "" if sv is None or pv is None else ("same" if sv == pv else "DIFFER")
        whole = [("-" if v is None else f"{v:,.0f}") for v in (sv, pv)]
        lines.append(f"{what:<34}{unit:<7}{whole[0]:>12}{whole[1]:>12}  {mark}")
    rest = [n for n in names if n not in shown]
    if rest:
        lines.append("-- figures without a counterpart in the other program")
        for name in rest:
            short, _, unit = name.split("/", 1)[1].rpartition("[")
            for impl, m in med[(b.key, name)].items():
                counts.append(m["n"])
                col = 12 if impl == b.subject else 24
                lines.append(f"{short:<34}{unit.rstrip(']'):<7}{fmt_num(m.get('value')):>{col}}")
    lines.append(f"   (median of {max(counts) if counts else 0} runs; a speed-up ratio above 1: "
                 f"{b.subject} gains more from the second P)")
    return lines, ratios


def plot(ratios, med, bench_list, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib missing: no plot (apt-get install python3-matplotlib)")
        return False
    peers = ["bdwgc", "malloc", "mimalloc", "go"]
    colors = {"bdwgc": "#d62728", "malloc": "#7f7f7f", "mimalloc": "#2ca02c", "go": "#1f77b4"}
    rel = [r for r in ratios if r["ratio_of"].split("/")[1] in peers and r["ratio_of"].startswith("tricolor/")]
    names = []
    for r in rel:
        label = r["name"]
        if label not in names:
            names.append(label)
    fig, axes = plt.subplots(3, 1, figsize=(max(10, 0.55 * len(names) + 3), 13))
    width = 0.8 / len(peers)
    for ax, field, title in [(axes[0], "time_ratio", "time (or ns/op): tricolor / peer  (< 1: tricolor faster)"),
                             (axes[1], "rss_ratio", "peak RSS: tricolor / peer  (< 1: tricolor smaller)")]:
        for j, peer in enumerate(peers):
            xs, ys = [], []
            for i, n in enumerate(names):
                for r in rel:
                    if r["name"] == n and r["ratio_of"] == f"tricolor/{peer}" and r[field]:
                        xs.append(i + (j - len(peers) / 2 + 0.5) * width)
                        ys.append(r[field])
            if xs:
                ax.bar(xs, ys, width, label=peer, color=colors[peer])
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
        if ax.get_legend_handles_labels()[0]:  # a run with no peer (--only=trace_overhead) has no bars
            ax.legend(fontsize=8)
    # Pauses: absolute max pause per GC'd impl, for the GC benchmarks.
    ax = axes[2]
    gc_impls = ["tricolor", "bdwgc", "go"]
    pcolors = {"tricolor": "#9467bd", "bdwgc": "#d62728", "go": "#1f77b4"}
    pnames = [n for (bk, n) in med if bk in ("gcbench", "binary_trees-t1", "binary_trees-t2", "churn")]
    pnames = sorted(set(pnames))
    w = 0.8 / len(gc_impls)
    for j, impl in enumerate(gc_impls):
        xs, ys = [], []
        for i, n in enumerate(pnames):
            for (bk, nm), rows in med.items():
                if nm == n and impl in rows and rows[impl].get("max_pause_us"):
                    xs.append(i + (j - len(gc_impls) / 2 + 0.5) * w)
                    ys.append(rows[impl]["max_pause_us"])
                    break
        if xs:
            ax.bar(xs, ys, w, label=impl, color=pcolors[impl])
    ax.set_yscale("log")
    ax.axhline(100, color="black", linewidth=0.8, linestyle="--")
    ax.set_title("max stop-the-world pause, µs (dashed: the 100 µs goal)")
    ax.set_xticks(range(len(pnames)))
    ax.set_xticklabels(pnames, rotation=30, ha="right", fontsize=8)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


# ---- Main --------------------------------------------------------------------------

def reexec_with_matplotlib():
    """Debian's python3-matplotlib belongs to /usr/bin/python3: use it if this one lacks it."""
    import importlib.util
    if importlib.util.find_spec("matplotlib"):  # not imported yet: keeps this process small
        return
    system = "/usr/bin/python3"
    if os.path.exists(system) and os.path.realpath(sys.executable) != os.path.realpath(system) \
            and not os.environ.get("TRICOLOR_PERF_REEXEC"):
        os.environ["TRICOLOR_PERF_REEXEC"] = "1"
        os.execv(system, [system] + sys.argv)


def main():
    reexec_with_matplotlib()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="small sizes, 3 reps (the default)")
    g.add_argument("--full", action="store_true", help="full sizes, 3 reps: the record")
    ap.add_argument("--reps", type=int, help="runs per benchmark and impl")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-perf"),
                    help="a build directory configured with --buildtype=release (created if absent)")
    ap.add_argument("--out", help="output directory (default: <build-dir>/perf-results/<mode>-<time>)")
    ap.add_argument("--only", help="comma-separated benchmark keys")
    ap.add_argument("--impls", help="comma-separated impls to run (default: all)")
    ap.add_argument("--go", help="path of the go tool (default: PATH, then /usr/lib/go-1.19/bin/go)")
    ap.add_argument("--procs", type=int, default=os.cpu_count(), help="tricolor procs = GOMAXPROCS")
    ap.add_argument("--no-build", action="store_true", help="use the build directory as it is")
    a = ap.parse_args()
    mode = "full" if a.full else "quick"
    reps = a.reps or 3
    build_dir = os.path.abspath(a.build_dir)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = os.path.abspath(a.out or os.path.join(build_dir, "perf-results", f"{mode}-{stamp}"))

    have_fibers = os.path.exists(os.path.join(PERF_DIR, "fibers.cc"))
    blist = benches(have_fibers)
    if a.only:
        keys = set(a.only.split(","))
        unknown = keys - {b.key for b in blist}
        if unknown:
            sys.exit(f"unknown benchmark(s): {', '.join(sorted(unknown))}; "
                     f"known: {', '.join(b.key for b in blist)}")
        blist = [b for b in blist if b.key in keys]
    if a.impls:
        keep = set(a.impls.split(","))
        for b in blist:
            b.impls = [i for i in b.impls if i.split("+")[0] in keep or i in keep]

    t_start = time.monotonic()
    buildtype = "(not built)"
    native = any(i != "go" for b in blist for i in b.impls)
    if native and not a.no_build:
        # perf_gcbench is always built: it probes whether this build has bdwgc.
        buildtype = build(build_dir, sorted({b.program for b in blist} | {"gcbench"}))
    os.makedirs(out, exist_ok=True)

    notes = []
    gobench, go_version = None, None
    if any("go" in b.impls for b in blist):
        go = find_go(a.go)
        if go:
            try:
                gobench, go_version = build_go(go, out)
            except subprocess.CalledProcessError as e:
                notes.append(f"the Go peers did not build ({e}); skipped")
        else:
            notes.append("no Go toolchain (apt-get install golang-1.19-go): the go peer is skipped")
        if not gobench:
            for b in blist:
                b.impls = [i for i in b.impls if i != "go"]
    for n in notes:
        log("note: " + n)

    # Which native impls exist in this build (bdwgc is optional); not asked when no bench
    # runs bdwgc (a Go-only run needs no native build).
    probe = None
    if any("bdwgc" in b.impls for b in blist):
        probe = subprocess.run([os.path.join(build_dir, "perf", "perf_gcbench"), "--impl=bdwgc",
                                "--stretch=4", "--long-lived=4", "--max-depth=4", "--array=4000"],
                               capture_output=True, text=True)
    if probe is not None and probe.returncode != 0:
        notes.append("this build has no bdwgc (libgc-dev): the bdwgc peer is skipped")
        for b in blist:
            b.impls = [i for i in b.impls if i != "bdwgc"]
    for b in blist:
        exe = b.command.get("bdwgc") if b.command else None
        if exe and "bdwgc" in b.impls and not os.path.exists(os.path.join(build_dir, exe)):
            notes.append(f"{exe} is not built (meson option scheme_bdwgc): "
                         f"{b.key} runs without its bdwgc peer")
            b.impls = [i for i in b.impls if i != "bdwgc"]

    runs = []
    for rep in range(reps):
        for b in blist:
            impls = b.impls[rep % len(b.impls):] + b.impls[:rep % len(b.impls)] if b.impls else []
            for impl in impls:
                r = run_one(b, impl, rep, mode, build_dir, gobench, out, a.procs)
                runs.append(r)
                with open(os.path.join(out, "runs.jsonl"), "a") as f:  # survives an interrupted run
                    f.write(json.dumps(r) + "\n")
                first = r["results"][0] if r["results"] else {}
                pk = primary_of(first) if first else "time_s"
                log(f"[rep {rep + 1}/{reps}] {b.key:<16} {impl:<20} {r['status']:<8} "
                    f"{pk}={first.get(pk, '-')} (load {r['loadavg']:.1f}, {r['wall_s']:.1f} s)")

    med = medians(runs)
    lines, ratios = tables(blist, med, runs)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    loads = [r["loadavg"] for r in runs if r["loadavg"] >= 0]
    header = [
        f"tricolor comparison, mode={mode}, reps={reps}, commit {commit}, "
        f"{datetime.datetime.now().isoformat(timespec='seconds')}",
        f"machine: {platform.machine()}, {os.cpu_count()} cpus, procs={a.procs}, buildtype={buildtype}, "
        f"go={go_version or 'none'}",
        f"load average during the runs: median {statistics.median(loads) if loads else -1:.1f}, "
        f"max {max(loads) if loads else -1:.1f} (a busy machine inflates time_s; cpu_s and "
        f"ns_per_obj/ns_per_store are CPU time)",
        "pauses: max = longest single stop-the-world pause (bdwgc: stop-to-restart of a "
        "collection; go: longest per-cycle pause of the last 256 cycles); p99 over per-cycle pauses",
    ] + [f"note: {n}" for n in notes]
    text = "\n".join(header + lines) + "\n"
    print(text)
    with open(os.path.join(out, "results.txt"), "w") as f:
        f.write(text)
    doc = {
        "mode": mode, "reps": reps, "commit": commit, "procs": a.procs, "buildtype": buildtype,
        "go": go_version, "notes": notes, "elapsed_s": time.monotonic() - t_start,
        "medians": [{"bench": k[0], "name": k[1], "impls": v} for k, v in med.items()],
        "ratios": ratios, "runs": runs,
    }
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1)
    if plot(ratios, med, blist, os.path.join(out, "plot.png")):
        log(f"plot: {os.path.join(out, 'plot.png')}")
    log(f"results: {out}/results.txt, results.json ({time.monotonic() - t_start:.0f} s in all)")
    return 1 if any(r["status"] != "ok" for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
