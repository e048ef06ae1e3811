#!/usr/bin/env python3
"""Compare code-intel's per-function cyclomatic complexity with the lizard analyzer.

Usage: compare_lizard.py LIZARD_PYTHON FUNCTIONS_BINARY FILE...

LIZARD_PYTHON is a python with `lizard` installed (e.g. .venv-lizard/bin/python),
FUNCTIONS_BINARY the code-intel `functions` example (target/debug/examples/functions).
Functions are matched by file and start line; prints per-file agreement and the
differences, then a summary line.
"""
import csv
import io
import subprocess
import sys


def lizard_functions(python, files):
    out = subprocess.run([python, "-m", "lizard", "--csv", *files],
                         check=True, capture_output=True, text=True).stdout
    found = {}
    for row in csv.reader(io.StringIO(out)):
        # NLOC, CCN, tokens, params, length, location, file, name, long_name, start, end
        if len(row) < 11 or not row[0].isdigit():
            continue
        found[(row[6], int(row[9]))] = (row[7], int(row[1]), int(row[0]))
    return found


def our_functions(binary, files):
    out = subprocess.run([binary, *files], check=True, capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        file, start, _end, name, ccn, nloc, _params = line.split("\t")
        found[(file, int(start))] = (name, int(ccn), int(nloc))
    return found


def main():
    python, binary, *files = sys.argv[1:]
    theirs = lizard_functions(python, files)
    ours = our_functions(binary, files)
    common = sorted(set(theirs) & set(ours))
    same = sum(1 for key in common if theirs[key][1] == ours[key][1])
    within1 = sum(1 for key in common if abs(theirs[key][1] - ours[key][1]) <= 1)
    nloc_same = sum(1 for key in common if theirs[key][2] == ours[key][2])
    for key in common:
        if theirs[key][1] != ours[key][1]:
            print(f"{key[0]}:{key[1]} {ours[key][0]}: ours {ours[key][1]} lizard {theirs[key][1]}")
    only_ours = sorted(set(ours) - set(theirs))
    only_theirs = sorted(set(theirs) - set(ours))
    print(f"functions: ours {len(ours)}, lizard {len(theirs)}, matched by file:line {len(common)}")
    print(f"only ours: {len(only_ours)}, only lizard: {len(only_theirs)}")
    if common:
        total_ours = sum(ours[k][1] for k in common)
        total_theirs = sum(theirs[k][1] for k in common)
        print(f"CCN equal: {same}/{len(common)} ({100 * same / len(common):.1f}%), "
              f"within 1: {within1}/{len(common)} ({100 * within1 / len(common):.1f}%), "
              f"sum ours {total_ours} vs lizard {total_theirs}; "
              f"NLOC equal: {nloc_same}/{len(common)}")


if __name__ == "__main__":
    main()
