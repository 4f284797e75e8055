#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""results_md.py -- vems-bench --json output as Markdown tables.

Usage: python3 bench/results_md.py RESULTS.json > results.md

Prints, per fast-tier mode, the targets (ratio, target, met or missed) and
every series (median, min, max, p50, p99) in the units the table on stdout
uses. This is how bench/README.md's results section is made.
"""
import json
import math
import sys


def shown(unit, v):
    if v is None:
        return "-"
    if unit == "ns/op":
        return "%.3f" % (v / 1000)
    if unit == "ops/s":
        return "%.1f" % (v / 1000)
    return "%.3f" % v


UNITS = {"ns/op": "us/op", "ops/s": "kops/s"}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    doc = json.load(open(sys.argv[1]))
    modes = doc["modes"] if "modes" in doc else [doc]
    for m in modes:
        if m is None:
            continue
        title = {"pmem": "pmem model (tmpfs, PMEM_IS_PMEM_FORCE=1)",
                 "durable": "durable emulation (pmem file on ext4, msync)"}
        print("### %s, %d rounds\n" % (title.get(m["mode"], m["mode"]),
                                       m["rounds"]))
        print("| workload | target | measured | |")
        print("| --- | --- | --- | --- |")
        for t in m["targets"]:
            v = t["value"]
            if t["target"] is None:
                tgt, verdict = "(reference)", ""
            else:
                tgt = ("<= " if t["at_most"] else ">= ") + "%g" % t["target"]
                verdict = "met" if t["met"] else "**missed**"
            print("| %s: %s | %s | %s | %s |" % (
                t["workload"], t["what"], tgt,
                "-" if v is None else "%.3f" % v, verdict))
        print()
        print("| workload | variant | median | min | max | p50 | p99 | unit |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
        for s in m["series"]:
            u = s["unit"]
            p50 = s.get("p50_ns")
            p99 = s.get("p99_ns")
            print("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                s["workload"], s["variant"], shown(u, s["median"]),
                shown(u, s["min"]), shown(u, s["max"]),
                "-" if p50 is None else "%.3f" % (p50 / 1000),
                "-" if p99 is None else "%.3f" % (p99 / 1000),
                UNITS.get(u, u)))
        for n in m.get("notes", []):
            print("\nNote: %s" % n)
        print()


if __name__ == "__main__":
    main()
