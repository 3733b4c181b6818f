#!/usr/bin/env python3
"""Time from each power loss to a leader again, read off run folders' history.jsonl.

For every `power` fault (start = the power loss, end = the restart of its nodes) it prints:
  down   seconds from the loss to the restart (the nemesis interval, plus kill and drop);
  loss→ok  seconds from the loss to the first operation invoked after the restart that a
           node acknowledged (ok): consistent reads and writes both need a leader;
  restart→ok seconds from the restart to that operation.
Losses of one node that is not the leader barely interrupt service; the figures that measure a
new election are those of `all`. Medians per target spec at the end.

usage: scripts/power-recovery.py RUN_FOLDER...
"""
import json, statistics, sys
from collections import defaultdict

rows = defaultdict(list)
for d in sys.argv[1:]:
    ops = []
    with open(f"{d}/history.jsonl") as fh:
        for line in fh:
            try:
                ops.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a truncated last line
    invokes = {}
    oks = []  # (invoke time, ok time)
    for o in ops:
        if o["process"] == "nemesis":
            continue
        if o["type"] == "invoke":
            invokes[o["process"]] = o["time"]
        elif o["type"] == "ok" and o["process"] in invokes:
            oks.append((invokes.pop(o["process"]), o["time"]))
    starts = {}
    for o in ops:
        if o["process"] != "nemesis" or o["f"] != "power":
            continue
        v = o["value"]
        key = tuple(v.get("targets") or [])
        if v["event"] == "start":
            starts[key] = (o["time"], v["detail"]["target"])
        elif v["event"] == "end" and key in starts:
            t0, spec = starts.pop(key)
            t1 = o["time"]
            first = min((done for inv, done in oks if inv >= t1), default=None)
            if first is None:
                print(f"{d}: {spec} {list(key)} at {t0/1e9:.1f}s: no acknowledged operation after the restart")
                continue
            rows[spec].append(((t1 - t0) / 1e9, (first - t0) / 1e9, (first - t1) / 1e9))
            print(f"{d}: {spec:8} {','.join(key):9} at {t0/1e9:5.1f}s  down {(t1-t0)/1e9:5.2f}s  loss→ok {(first-t0)/1e9:6.2f}s  restart→ok {(first-t1)/1e9:6.2f}s")

print()
for spec, r in sorted(rows.items()):
    print(f"{spec:8} n={len(r):2}  median down {statistics.median(x[0] for x in r):5.2f}s  "
          f"loss→ok {statistics.median(x[1] for x in r):6.2f}s  restart→ok {statistics.median(x[2] for x in r):6.2f}s  "
          f"(restart→ok max {max(x[2] for x in r):.2f}s)")
