#!/usr/bin/env python3
"""Tests of report.py: fixture dumps (testdata/good.jsonl, testdata/corrupt.jsonl), an
unknown format version, and, with --workload PROGRAM, a dump written by a real workload
(test/trace/trace_workload) turned into plots.

    test_report.py [--workload PROGRAM] [unittest arguments]
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPORT = os.path.join(HERE, "report.py")
GOOD = os.path.join(HERE, "testdata", "good.jsonl")
CORRUPT = os.path.join(HERE, "testdata", "corrupt.jsonl")
PLOTS = ("heap.png", "pauses.png", "gc_cpu.png", "size_classes.png", "types.png")
WORKLOAD = None  # set by --workload

try:
    import matplotlib  # noqa: F401
    HAVE_MATPLOTLIB = True
except ImportError:
    HAVE_MATPLOTLIB = False


def run(*args):
    p = subprocess.run([sys.executable, REPORT, *args], capture_output=True, text=True,
                       timeout=300)
    return p.returncode, p.stdout, p.stderr


def summary(*args):
    code, out, err = run(*args, "--json", "--no-plots")
    return code, json.loads(out) if out else None, err


def check_png(test, path, min_bytes):
    test.assertTrue(os.path.exists(path), f"{path} was not written")
    with open(path, "rb") as f:
        data = f.read()
    test.assertEqual(data[:8], b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG")
    # A plot with axes, labels and data is tens of KiB; an empty figure is a few KiB.
    test.assertGreater(len(data), min_bytes, f"{path} is only {len(data)} bytes")
    # Width and height from the IHDR chunk: a readable figure, not a thumbnail.
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    test.assertGreaterEqual(width, 800)
    test.assertGreaterEqual(height, 500)


class GoodDumpTest(unittest.TestCase):
    def test_the_summary_has_the_figures_of_the_dump(self):
        code, s, err = summary(GOOD)
        self.assertEqual(code, 0, err)
        self.assertEqual(err, "")
        self.assertEqual(s["version"], 1)
        self.assertEqual(s["procs"], 2)
        self.assertTrue(s["complete"])
        self.assertEqual(s["cycles"], 3)
        self.assertEqual(s["cycles_by_reason"], {"heap": 2, "user": 1})
        self.assertEqual(s["forced_cycles"], 1)
        self.assertEqual(s["forced_reasons"], {"user": 1})
        # Pauses 10, 20, 30, 60, 80 us and 1.5 ms: nearest-rank percentiles.
        p = s["pauses"]
        self.assertEqual(p["count"], 6)
        self.assertEqual(p["p50_ns"], 30000)
        self.assertEqual(p["p90_ns"], 1500000)
        self.assertEqual(p["p99_ns"], 1500000)
        self.assertEqual(p["max_ns"], 1500000)
        self.assertEqual(p["total_ns"], 1700000)
        self.assertEqual(s["pauses_by_phase"]["sweep_termination"]["max_ns"], 30000)
        self.assertEqual(s["pause_per_cycle"]["max_ns"], 1530000)
        self.assertAlmostEqual(s["gc_cpu_fraction"], 0.025)
        self.assertEqual(s["peak"]["heap_inuse"], 7 << 20)
        self.assertEqual(s["peak"]["heap_marked"], 3 << 20)
        self.assertEqual(s["peak"]["heap_sys"], 64 << 20)
        self.assertEqual(s["scavenged_bytes"], 3 << 20)
        self.assertAlmostEqual(s["duration_s"], 0.400001)
        # Sweeps: wall and CPU of every cycle's, and who finished them.
        self.assertEqual(s["sweeps"]["count"], 3)
        self.assertEqual(s["sweeps"]["cpu_ns"], 1500000)
        self.assertEqual(s["sweeps"]["by"], {"background": 2, "foreground": 1})
        # Types: in-use bytes at the peak (after Buffer's sample: Node 0.5 MiB, Buffer
        # 1.5 MiB), then the sweep freed the first Node and, at the end, the Buffer.
        self.assertTrue(s["types_inuse"])
        self.assertAlmostEqual(s["types_inuse_peak_s"], 0.2005)
        self.assertEqual(s["free_samples"], 2)
        self.assertEqual([t["type"] for t in s["types"]], ["Buffer", "Node"])
        buf, node = s["types"]
        self.assertEqual(buf["inuse_bytes"], 3 * 524288)
        self.assertAlmostEqual(buf["inuse_share"], 0.75)
        self.assertEqual(buf["inuse_end_bytes"], 0)
        self.assertEqual(node["inuse_bytes"], 524288)
        self.assertEqual(node["inuse_end_bytes"], 524288)
        # Allocated bytes by sampled weight: Buffer 1.5 MiB, Node 1 MiB.
        self.assertEqual(buf["alloc_bytes"], 3 * 524288)
        self.assertAlmostEqual(buf["alloc_share"], 0.6)
        self.assertEqual(node["alloc_bytes"], 2 * 524288)
        self.assertEqual(node["samples"], 2)
        self.assertEqual(s["problems"], [])

    def test_a_dump_without_frees_shows_allocated_bytes_by_type(self):
        # Dumps of writers that did not yet track frees: samples without ids, no free_sample.
        with open(GOOD) as f:
            lines = [json.loads(l) for l in f if '"free_sample"' not in l]
        for ev in lines:
            ev.pop("id", None)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "old.jsonl")
            with open(path, "w") as f:
                f.writelines(json.dumps(ev) + "\n" for ev in lines)
            code, s, err = summary(path)
            self.assertEqual(code, 0, err)
            self.assertFalse(s["types_inuse"])
            self.assertEqual([t["type"] for t in s["types"]], ["Buffer", "Node"])
            self.assertNotIn("inuse_bytes", s["types"][0])
            code, out, err = run(path, "--no-plots")
            self.assertEqual(code, 0, err)
            self.assertIn("allocated bytes by type", out)
            self.assertIn("no in-use bytes", out)

    def test_the_text_summary_names_every_figure(self):
        code, out, err = run(GOOD, "--no-plots")
        self.assertEqual(code, 0, err)
        for needle in ("format v1", "2 P", "GOGC=100", "3 (1 forced: user 1",
                       "p50 0.030 ms", "p99 1.500 ms", "max 1.500 ms", "GC CPU       2.50%",
                       "in use (spans) 7.0 MiB", "live (marked) 3.0 MiB",
                       "in-use bytes by type at the peak (0.201 s)", "75.0%", "Buffer", "Node",
                       "3.0 MiB returned", "sweeper CPU 1.500 ms",
                       "finished by: background 2, foreground 1"):
            self.assertIn(needle, out)
        self.assertNotIn("wrote", out)

    def test_top_limits_the_types(self):
        code, s, err = summary(GOOD, "--top", "1")
        self.assertEqual(code, 0, err)
        self.assertEqual(len(s["types"]), 1)
        self.assertEqual(s["types_total"], 2)

    @unittest.skipUnless(HAVE_MATPLOTLIB, "matplotlib is not installed for this python")
    def test_the_plots_are_written(self):
        with tempfile.TemporaryDirectory() as d:
            out_dir = os.path.join(d, "report")
            code, out, err = run(GOOD, "-o", out_dir)
            self.assertEqual(code, 0, err)
            for name in PLOTS:
                check_png(self, os.path.join(out_dir, name), 15000)
                self.assertIn(f"wrote {os.path.join(out_dir, name)}", out)


class BadDumpTest(unittest.TestCase):
    def test_a_corrupt_dump_names_its_bad_lines_and_the_rest_is_summarised(self):
        code, s, err = summary(CORRUPT)
        self.assertEqual(code, 0, err)
        self.assertIn("corrupt.jsonl:5: not valid JSON", err)
        self.assertIn("corrupt.jsonl:9: pause event without ns", err)
        self.assertIn("corrupt.jsonl:21: truncated", err)
        self.assertIn("no end event", err)
        lines = sorted({p["line"] for p in s["problems"]})
        self.assertEqual(lines, [5, 9, 21])
        self.assertFalse(s["complete"])
        self.assertEqual(s["cycles"], 3)
        self.assertEqual(s["pauses"]["count"], 4)
        self.assertEqual(s["pauses"]["max_ns"], 1500000)
        self.assertAlmostEqual(s["gc_cpu_fraction"], 0.03)  # the last cycle's
        self.assertEqual(len(s["types"]), 2)

    def test_strict_fails_on_a_corrupt_dump(self):
        code, _, err = run(CORRUPT, "--no-plots", "--strict")
        self.assertEqual(code, 1)
        self.assertIn(":5:", err)
        code, _, _ = run(GOOD, "--no-plots", "--strict")
        self.assertEqual(code, 0)

    @unittest.skipUnless(HAVE_MATPLOTLIB, "matplotlib is not installed for this python")
    def test_a_corrupt_dump_still_gets_its_plots(self):
        with tempfile.TemporaryDirectory() as d:
            code, _, err = run(CORRUPT, "-o", d)
            self.assertEqual(code, 0, err)
            for name in PLOTS:
                check_png(self, os.path.join(d, name), 15000)

    def test_an_unknown_version_is_a_clear_error(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "v2.jsonl")
            with open(path, "w") as f:
                f.write('{"v":2,"ev":"start","t_ns":0,"procs":1}\n')
            code, out, err = run(path, "--no-plots")
            self.assertEqual(code, 2)
            self.assertEqual(out, "")
            self.assertIn("line 1: dump format version 2 is not supported", err)
            self.assertIn("reads version 1", err)

    def test_a_missing_or_empty_file_is_an_error(self):
        with tempfile.TemporaryDirectory() as d:
            code, _, err = run(os.path.join(d, "none.jsonl"), "--no-plots")
            self.assertEqual(code, 2)
            self.assertIn("cannot read", err)
            empty = os.path.join(d, "empty.jsonl")
            open(empty, "w").close()
            code, _, err = run(empty, "--no-plots")
            self.assertEqual(code, 2)
            self.assertIn("is empty", err)

    def test_a_file_that_is_not_a_dump_is_an_error(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "text.jsonl")
            with open(path, "w") as f:
                f.write("hello\nworld\n")
            code, _, err = run(path, "--no-plots")
            self.assertEqual(code, 2)
            self.assertIn("no valid heap-trace event", err)
            self.assertIn(":1: not valid JSON", err)

    def test_unknown_events_of_a_known_version_are_skipped_and_counted(self):
        with open(GOOD) as f:
            lines = f.readlines()
        lines.insert(3, '{"v":1,"ev":"future_event","t_ns":5}\n')
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "future.jsonl")
            with open(path, "w") as f:
                f.writelines(lines)
            code, s, err = summary(path)
            self.assertEqual(code, 0, err)
            self.assertEqual(s["unknown_events"], {"future_event": 1})
            self.assertEqual(s["cycles"], 3)
            self.assertEqual(s["problems"], [])


@unittest.skipUnless(WORKLOAD or "--workload" in sys.argv, "needs --workload PROGRAM")
class RealWorkloadTest(unittest.TestCase):
    def test_a_dump_of_a_real_workload_becomes_readable_plots(self):
        self.assertTrue(HAVE_MATPLOTLIB, "matplotlib is needed for this test")
        with tempfile.TemporaryDirectory() as d:
            dump = os.path.join(d, "dump.jsonl")
            p = subprocess.run([WORKLOAD, dump, "96"], capture_output=True, text=True,
                               timeout=600)
            self.assertEqual(p.returncode, 0, p.stderr)
            out_dir = os.path.join(d, "plots")
            code, out, err = run(dump, "-o", out_dir, "--strict")
            self.assertEqual(code, 0, err)
            self.assertIn("cycles", out)
            for name in PLOTS:
                check_png(self, os.path.join(out_dir, name), 30000)
            code, s, err = summary(dump, "--strict")
            self.assertEqual(code, 0, err)
            self.assertTrue(s["complete"])
            self.assertGreaterEqual(s["cycles"], 6)
            self.assertGreaterEqual(s["forced_reasons"].get("user", 0), 5)
            self.assertGreaterEqual(s["pauses"]["count"], 2 * s["cycles"])
            self.assertGreater(s["peak"]["heap_inuse"], 4 << 20)
            self.assertGreater(s["gc_cpu_fraction"], 0)
            names = {t["type"] for t in s["types"]}
            self.assertLessEqual({"TraceNode", "TraceTable", "<untyped>"}, names)
            # The samples estimate what was allocated (about 96 MiB).
            sampled = sum(t["alloc_bytes"] for t in s["types"])
            self.assertGreater(sampled, 48 << 20)
            self.assertLess(sampled, 192 << 20)
            # The sweep freed sampled objects: in use at the peak is a part of what was
            # allocated, and the workload drops its whole live set before the end.
            self.assertTrue(s["types_inuse"])
            self.assertGreater(s["free_samples"], s["alloc_samples"] // 2)
            inuse = sum(t["inuse_bytes"] for t in s["types"])
            self.assertGreater(inuse, 0)
            self.assertLess(inuse, sampled)
            self.assertLess(sum(t["inuse_end_bytes"] for t in s["types"]), inuse)
            self.assertEqual(s["sweeps"]["count"], s["cycles"])


if __name__ == "__main__":
    if "--workload" in sys.argv:
        i = sys.argv.index("--workload")
        WORKLOAD = sys.argv[i + 1]
        del sys.argv[i:i + 2]
    unittest.main()
