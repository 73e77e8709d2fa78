#!/usr/bin/env python3
"""A mutation fuzzer for the heap-trace reader (tools/heaptrace/report.py).

Takes the seed dumps of a corpus directory (test/fuzz/corpus/heaptrace/), mutates them
(truncation, flipped bytes, dropped, duplicated and swapped lines, garbage lines, fields
of the wrong type, huge numbers, NaN and infinities, missing keys, unknown events and
versions) and runs the report on each mutant in this process. The reader must never
raise: each mutant is either summarised, with every unusable line reported as
"DUMP:LINE: why" on stderr, or refused with "report.py: error: ..." and status 2.

    fuzz_heaptrace.py CORPUS [--iterations N | --seconds S] [--seed K] [--plots]
                             [--crashes DIR]

The default (2000 iterations, seed 1, no plots) is deterministic and takes a few seconds:
it is the test the suite runs. A longer run: --seconds 3600 --seed $RANDOM (--plots also
draws the PNGs of every 50th mutant, which is slower). A mutant that makes the reader
raise is written to DIR (default: the current directory) as crash-<n>.jsonl, with the
traceback on stderr; the exit status is then 1.
"""

import argparse
import contextlib
import io
import json
import os
import random
import re
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "heaptrace"))
import report  # noqa: E402  (tools/heaptrace/report.py)

# Values that a field may be replaced with: wrong types, extremes, non-finite numbers.
ODD_VALUES = [None, True, False, "", "x", "12", [], [1, 2], {}, {"a": 1}, 0, -1, -2**63,
              2**63, 2**64, 10**30, 10**400, 1e308, -1e308, 0.5, float("nan"), float("inf"),
              float("-inf"), [[1, 2, 3]], [[None, "a", -1]], [[0, 0]], [[1e300, 8, 1]]]
GARBAGE = [b"", b" ", b"{", b"}", b"[]", b"null", b"42", b"\"ev\"", b"{\"v\":1}",
           b"{\"v\":1,\"ev\":\"start\"}", b"{\"v\":2,\"ev\":\"start\",\"t_ns\":0}",
           b"\xff\xfe\x00garbage", b"{\"v\":1,\"ev\":[\"pause\"],\"t_ns\":1}",
           b"{\"v\":[1],\"ev\":\"pause\"}", b"{\"v\":1,\"ev\":{\"k\":1}}", b"NaN"]


def mutate_value(rng, v):
    """v changed in one way: an odd value, or (in a list) one element changed."""
    if isinstance(v, list) and v and rng.random() < 0.5:
        v = list(v)
        i = rng.randrange(len(v))
        v[i] = mutate_value(rng, v[i])
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool) and rng.random() < 0.3:
        return rng.choice([-v, v * 2**40, v + 0.5, 0])
    return rng.choice(ODD_VALUES)


def mutate_json_line(rng, line):
    """A structured change to one event: a field's value, a missing or renamed key, another
    event kind or version. Lines that are not a JSON object are returned unchanged."""
    try:
        ev = json.loads(line)
    except ValueError:
        return line
    if not isinstance(ev, dict) or not ev:
        return line
    op = rng.randrange(5)
    keys = list(ev)
    k = rng.choice(keys)
    if op == 0:
        ev[k] = mutate_value(rng, ev[k])
    elif op == 1:
        del ev[k]
    elif op == 2:
        ev[k + "_"] = ev.pop(k)
    elif op == 3:
        ev["ev"] = rng.choice(["start", "end", "pause", "cycle_end", "oom", "scavenge",
                               "sweep_done", "alloc_sample", "cycle_begin", "nope", 7, None])
    else:
        ev["v"] = rng.choice([1, 1, 2, 0, "1", 1.0, None, [1]])
    return json.dumps(ev, separators=(",", ":")).encode()  # NaN/Infinity as Python writes them


def mutate(rng, data):
    lines = data.split(b"\n")
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(9)
        if not lines:
            lines = [b""]
        i = rng.randrange(len(lines))
        if op == 0:
            lines[i] = mutate_json_line(rng, lines[i])
        elif op == 1:
            lines[i] = mutate_json_line(rng, mutate_json_line(rng, lines[i]))
        elif op == 2 and lines[i]:  # flip bytes
            b = bytearray(lines[i])
            for _ in range(rng.randint(1, 3)):
                j = rng.randrange(len(b))
                b[j] ^= 1 << rng.randrange(8)
            lines[i] = bytes(b)
        elif op == 3:
            del lines[i]
        elif op == 4:
            lines.insert(i, lines[i])
        elif op == 5:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == 6:
            lines.insert(i, rng.choice(GARBAGE))
        elif op == 7:  # a number made huge or negative in place
            lines[i] = re.sub(rb"\d+", lambda m: rng.choice([b"9" * 40, b"-1", b"1e999"]),
                              lines[i], count=1)
        else:  # truncate the dump
            out = b"\n".join(lines)
            return out[:rng.randrange(len(out) + 1)]
    return b"\n".join(lines)


def run_report(path, plots, outdir):
    """Runs report.main on path; returns (status, stdout, stderr). Raises what it raises."""
    out, err = io.StringIO(), io.StringIO()
    args = [path, "--json"] + (["-o", outdir] if plots else ["--no-plots"])
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = report.main(args)
    return status, out.getvalue(), err.getvalue()


def check_output(path, status, out, err):
    """The outcome is one of the documented ones; returns a complaint, or None."""
    lines = err.splitlines()
    if status == 2:  # refused, possibly after the problems of the lines read so far
        if not lines or not lines[-1].startswith("report.py: error: "):
            return f"status 2 without 'report.py: error:' at the end ({err[-200:]!r})"
        lines.pop()
    elif status not in (0, 1):
        return f"status {status!r}"
    for line in lines:
        if not line.startswith(path + ":") or not re.match(r"\d+: \S", line[len(path) + 1:]):
            return f"a stderr line is not 'DUMP:LINE: why': {line[:200]!r}"
    if status == 2:
        return None
    try:
        s = json.loads(out)
    except ValueError as e:
        return f"the JSON summary does not parse: {e}"
    if not isinstance(s, dict):
        return "the JSON summary is not an object"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", help="directory of seed dumps")
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=0,
                    help="run for this long instead of a number of iterations")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--plots", action="store_true", help="also draw the plots of every 50th mutant")
    ap.add_argument("--crashes", default=".", help="where to write inputs that make it raise")
    a = ap.parse_args()

    seeds = []
    for name in sorted(os.listdir(a.corpus)):
        with open(os.path.join(a.corpus, name), "rb") as f:
            seeds.append(f.read())
    if not seeds:
        sys.exit(f"fuzz_heaptrace.py: no seed dumps in {a.corpus}")
    rng = random.Random(a.seed)
    failures = 0
    n = 0
    deadline = time.monotonic() + a.seconds if a.seconds else None
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "dump.jsonl")
        while (time.monotonic() < deadline) if deadline else (n < a.iterations):
            data = rng.choice(seeds) if n % 50 else seeds[n // 50 % len(seeds)]
            data = mutate(rng, data) if n % 50 else data  # every 50th: a seed as it is
            with open(path, "wb") as f:
                f.write(data)
            plots = a.plots and n % 50 == 0
            try:
                status, out, err = run_report(path, plots, os.path.join(tmp, "plots"))
                complaint = check_output(path, status, out, err)
            except Exception:  # noqa: BLE001 -- any exception is the finding
                complaint = "raised:\n" + traceback.format_exc()
            if complaint:
                failures += 1
                crash = os.path.join(a.crashes, f"crash-{failures}.jsonl")
                with open(crash, "wb") as f:
                    f.write(data)
                print(f"fuzz_heaptrace.py: mutant {n} (kept as {crash}): {complaint}",
                      file=sys.stderr)
                if failures >= 10:
                    break
            n += 1
    print(f"fuzz_heaptrace.py: {n} mutants of {len(seeds)} seed(s), seed {a.seed}: "
          f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
