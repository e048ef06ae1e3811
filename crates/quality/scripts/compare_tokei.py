#!/usr/bin/env python3
"""Check that quality's code_stats counts equal the tokei command line tool's.

Usage: compare_tokei.py CODE_STATS_EXAMPLE DIR

Runs `tokei --output json DIR` and the `code_stats` example of the quality crate on
DIR, prints the timing of each and every language whose files, code, comments or blanks
differ; exits 1 when any does.
"""
import json
import subprocess
import sys
import time


def timed(command):
    start = time.perf_counter()
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out), time.perf_counter() - start


def main():
    example, root = sys.argv[1:]
    theirs, tokei_seconds = timed(["tokei", "--output", "json", root])
    ours, our_seconds = timed([example, root])
    ours_by_name = {row["language"]: row for row in ours["languages"]}
    differences = 0
    for name, row in theirs.items():
        if name == "Total":
            continue
        mine = ours_by_name.pop(name, None)
        expected = (len(row["reports"]), row["code"], row["comments"], row["blanks"])
        got = None if mine is None else (mine["files"], mine["code"], mine["comments"], mine["blanks"])
        if got != expected:
            differences += 1
            print(f"{name}: tokei {expected} ours {got}")
    for name in ours_by_name:
        differences += 1
        print(f"{name}: only in code_stats")
    total = theirs.get("Total", {})
    print(f"languages: {len(theirs) - ('Total' in theirs)}, differing: {differences}")
    print(f"total code: tokei {total.get('code')} ours {ours['total']['code']}")
    print(f"time: tokei {tokei_seconds:.2f}s, code_stats {our_seconds:.2f}s, "
          f"ratio {our_seconds / tokei_seconds:.2f}")
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
