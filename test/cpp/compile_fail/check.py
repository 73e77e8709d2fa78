#!/usr/bin/env python3
"""Compile-time checks of the C++ API, run by meson test.

  check.py --expect-error MESSAGE -- COMPILER ARGS... SOURCE
      the compilation must fail and its diagnostics must contain MESSAGE.
  check.py --expect-ok -- COMPILER ARGS... SOURCE
      the compilation must succeed (the control case of the above).
  check.py --same-code FN_A FN_B -- COMPILER ARGS... SOURCE
      compile SOURCE to assembly and compare the instructions of FN_A and FN_B (the
      zero-overhead check of member<T> stores).
"""
import re
import subprocess
import sys


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def function_body(asm, name):
    lines = asm.splitlines()
    starts = [i for i, l in enumerate(lines) if l.split("#")[0].strip() == name + ":"]
    if not starts:
        sys.exit(f"check.py: function {name} not found in the assembly")
    start = starts[0]
    body = []
    for line in lines[start + 1:]:
        s = line.strip()
        if s.startswith(".size") or s.startswith(".cfi_endproc"):
            break
        s = s.split("#")[0].strip()  # comments (clang's "# TAILCALL", "# %bb.1:")
        if not s or s.startswith(".cfi") or s.startswith(".Lfunc_end"):
            continue
        body.append(s)
    # Local labels differ between functions: name them by order of appearance.
    labels = {}
    out = []
    for s in body:
        for lab in re.findall(r"\.L\w+", s):
            labels.setdefault(lab, f".L{len(labels)}")
        out.append(re.sub(r"\.L\w+", lambda m: labels[m.group(0)], s))
    return out


def main():
    args = sys.argv[1:]
    sep = args.index("--")
    opts, cmd = args[:sep], args[sep + 1:]
    if opts[0] == "--expect-error":
        message = opts[1]
        r = run(cmd + ["-fsyntax-only"])
        if r.returncode == 0:
            sys.exit(f"check.py: expected a compile error containing {message!r}, "
                     "but the snippet compiled")
        if message not in r.stderr:
            sys.stderr.write(r.stderr)
            sys.exit(f"check.py: the compile error does not contain {message!r}")
        print(f"ok: rejected with {message!r}")
    elif opts[0] == "--expect-ok":
        r = run(cmd + ["-fsyntax-only"])
        if r.returncode != 0:
            sys.stderr.write(r.stderr)
            sys.exit("check.py: the control snippet does not compile")
        print("ok: compiles")
    elif opts[0] == "--same-code":
        a, b = opts[1], opts[2]
        r = run(cmd + ["-S", "-o", "-", "-masm=intel"])
        if r.returncode != 0:
            sys.stderr.write(r.stderr)
            sys.exit("check.py: the snippet does not compile")
        fa, fb = function_body(r.stdout, a), function_body(r.stdout, b)
        print(f"{a}:\n  " + "\n  ".join(fa))
        print(f"{b}:\n  " + "\n  ".join(fb))
        if fa != fb:
            sys.exit(f"check.py: {a} and {b} compile to different code")
        print("ok: same instructions")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
