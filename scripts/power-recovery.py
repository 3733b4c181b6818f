#!/usr/bin/env python3
"""Time from each power loss to a leader again, read off run folders' history.jsonl.

For every `power` fault (start = the power loss, end = its nodes restarted and given their
network rules) it prints:
  down        seconds from the loss to the end line (the nemesis interval, plus kill, drop,
              container start and the fault helper);
  loss→leader seconds from the loss to the next "entering leader state" of Raft in any node's
              log (agent and Consul both log it): a leader again. "kept" when none came before
              the fault ended and the old leader went on (the loss spared the leader);
  back→leader seconds from the first log line of a powered-off node after the loss (the power
              is back, its process runs; lines of the first 2 s are the dying process's) to that
              leader;
  loss→ok     seconds from the loss to the first operation invoked after the end line that a
              node acknowledged (consistent reads and writes both need a leader).
History time 0 is the start of the ready phase (results.json), which maps log clocks onto it.
Medians per target spec at the end.

usage: scripts/power-recovery.py RUN_FOLDER...
"""
import datetime, glob, json, re, statistics, sys
from collections import defaultdict


def wall(ts):
    """Seconds since the epoch of an RFC 3339 time with up to 9 fractional digits."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z", ts)
    base = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return base.timestamp() + float("0." + (m.group(2) or "0"))


STAMP = re.compile(r"(\d{4})[-/](\d\d)[-/](\d\d)[T ](\d\d:\d\d:\d\d)(\.\d+)?")


def line_time(line):
    """Wall time of a log line (hclog's RFC 3339 or Go's log format), or None."""
    m = STAMP.search(line)
    if not m:
        return None
    return wall(f"{m.group(1)}-{m.group(2)}-{m.group(3)}T{m.group(4)}{m.group(5) or ''}Z")


def back_times(d, node, after):
    """Wall time of the first line node logged after wall time after: when it ran again."""
    for line in open(f"{d}/nodes/{node}.log", errors="replace"):
        t = line_time(line)
        if t is not None and t > after:
            return t
    return None


def leader_times(d):
    """Wall times of every "entering leader state" line in the run's node logs."""
    out = []
    for log in glob.glob(f"{d}/nodes/*.log"):
        for line in open(log, errors="replace"):
            if "entering leader state" in line:
                m = re.search(r"(\d{4}-\d\d-\d\dT[\d:.]+Z)", line)
                if m:
                    out.append(wall(m.group(1)))
    return sorted(out)

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
    res = json.load(open(f"{d}/results.json"))
    t0 = next(wall(p["start"]) for p in res["phases"] if p["name"] == "ready")
    leaders = [(w - t0) * 1e9 for w in leader_times(d)]
    starts = {}
    for o in ops:
        if o["process"] != "nemesis" or o["f"] != "power":
            continue
        v = o["value"]
        key = tuple(v.get("targets") or [])
        if v["event"] == "start":
            starts[key] = (o["time"], v["detail"]["target"])
        elif v["event"] == "end" and key in starts:
            ts, spec = starts.pop(key)
            t1 = o["time"]
            first = min((done for inv, done in oks if inv >= t1), default=None)
            lead = min((t for t in leaders if t > ts), default=None)
            if first is None:
                print(f"{d}: {spec} {list(key)} at {ts/1e9:.1f}s: no acknowledged operation after the restart")
                continue
            # A leader elected after the end line is a new one only if service stopped: a loss
            # that spared the leader (ops kept succeeding) elects none.
            kept = lead is None or (lead > first and any(ts < done < t1 for inv, done in oks))
            # A node logs until the kill lands (well under 2 s); after that it is silent until its
            # power is back, at least one nemesis interval (≥ 2 s) later.
            backs = [b for b in (back_times(d, n, t0 + ts / 1e9 + 2) for n in key) if b is not None]
            back = (min(backs) - t0) * 1e9 if backs else None
            # A leader elected before any powered-off node was back came from the survivors.
            bl = None if kept or back is None or lead < back else (lead - back) / 1e9
            rows[spec].append(((t1 - ts) / 1e9, None if kept else (lead - ts) / 1e9, (first - ts) / 1e9, bl))
            ls = "  kept " if kept else f"{(lead-ts)/1e9:6.2f}s"
            bs = "   -   " if bl is None else f"{bl:6.2f}s"
            print(f"{d}: {spec:8} {','.join(key):9} at {ts/1e9:5.1f}s  down {(t1-ts)/1e9:5.2f}s  loss→leader {ls}  back→leader {bs}  loss→ok {(first-ts)/1e9:6.2f}s")

print()
for spec, r in sorted(rows.items()):
    el = [x[1] for x in r if x[1] is not None]
    bl = [x[3] for x in r if x[3] is not None]
    le = f"loss→leader median {statistics.median(el):6.2f}s (n={len(el)}, max {max(el):.2f}s)" if el else "loss→leader: leader kept every time"
    if bl:
        le += f"  back→leader median {statistics.median(bl):5.2f}s (max {max(bl):.2f}s)"
    print(f"{spec:8} n={len(r):2}  median down {statistics.median(x[0] for x in r):5.2f}s  {le}  "
          f"loss→ok median {statistics.median(x[2] for x in r):6.2f}s")
