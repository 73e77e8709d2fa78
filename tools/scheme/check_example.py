#!/usr/bin/env python3
"""Runs the interpreter on an example and checks what it printed.

  check_example.py [--env K=V]... SCHEME PROGRAM.scm EXPECTED
      exit status 0, stdout == EXPECTED
  check_example.py --error [--env K=V]... SCHEME PROGRAM.scm EXPECTED
      exit status 1, stderr == EXPECTED with "PROGRAM" standing for the program's path and
      "<N>" for any number; no sign of a crash (a signal)
  check_example.py --stdin SCHEME INPUT EXPECTED
      INPUT fed to the REPL on stdin; exit status 0, stdout == EXPECTED, stderr == the
      lines of EXPECTED.stderr if that file exists
"""
import os
import re
import subprocess
import sys


def main():
    args = sys.argv[1:]
    mode = "ok"
    env = dict(os.environ)
    while args and args[0].startswith("--"):
        a = args.pop(0)
        if a == "--error":
            mode = "error"
        elif a == "--stdin":
            mode = "stdin"
        elif a == "--env":
            k, v = args.pop(0).split("=", 1)
            env[k] = v
        else:
            sys.exit(__doc__)
    scheme, program, expected_path = args
    expected = open(expected_path).read()
    if mode == "stdin":
        r = subprocess.run([scheme], stdin=open(program), capture_output=True, text=True,
                           env=env, timeout=600)
    else:
        r = subprocess.run([scheme, program], capture_output=True, text=True, env=env,
                           timeout=600)
    sys.stdout.write(r.stdout[-4000:])
    sys.stderr.write(r.stderr[-4000:])
    if r.returncode < 0:
        sys.exit(f"FAIL: the interpreter died of signal {-r.returncode}")
    if mode == "error":
        want = expected.replace("PROGRAM", program)
        if r.returncode != 1:
            sys.exit(f"FAIL: exit status {r.returncode}, expected 1")
        # "<N>" in the expected text stands for any number (e.g. a request size).
        pattern = "".join(r"\d+" if part == "<N>" else re.escape(part)
                          for part in re.split(r"(<N>)", want))
        if not re.fullmatch(pattern, r.stderr):
            sys.exit(f"FAIL: stderr is\n{r.stderr!r}\nexpected\n{want!r}")
    else:
        if r.returncode != 0:
            sys.exit(f"FAIL: exit status {r.returncode}, expected 0")
        if r.stdout != expected:
            sys.exit("FAIL: stdout differs from " + expected_path)
        if mode == "stdin" and os.path.exists(expected_path + ".stderr"):
            want = open(expected_path + ".stderr").read()
            if r.stderr != want:
                sys.exit(f"FAIL: stderr is\n{r.stderr!r}\nexpected\n{want!r}")
    print("ok")


if __name__ == "__main__":
    main()
