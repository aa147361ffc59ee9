#!/usr/bin/env python3
# Splits each thread's time on CPU 1 into softirq time run in its context and its own time,
# per window in which the cost step's busy loops ("sh") ran (docs/benchmarks.md, "Where V2's cost gap is").
#   perf record -C 1 -e irq:softirq_entry -e irq:softirq_exit -e sched:sched_switch -o trace.data &
#   uvs bench --config cut.toml --out out; kill -INT %1
#   perf script -i trace.data -F comm,tid,cpu,time,event,trace | python3 softirq-split.py
import sys, re, collections
# perf script lines: comm tid [cpu] ts: event: fields
pat = re.compile(r'^\s*(.+?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)$')
run = collections.defaultdict(float)      # tid -> runtime (s) on cpu 1
sirq = collections.defaultdict(float)     # tid -> softirq time in its context
names = {}
cur = None; cur_since = None
entry = None
shs = []
events = []
for line in sys.stdin:
    m = pat.match(line)
    if not m: continue
    comm, tid, cpu, ts, ev, rest = m.group(1), int(m.group(2)), int(m.group(3)), float(m.group(4)), m.group(5), m.group(6)
    if cpu != 1: continue
    events.append((ts, comm, tid, ev, rest))
# windows: times where a 'sh' task runs; cluster with gap > 0.5 s
sh_times = [e[0] for e in events if e[1] == 'sh']
wins = []
for t in sh_times:
    if wins and t - wins[-1][1] < 0.5: wins[-1][1] = t
    else: wins.append([t, t])
print("cost windows:", [(round(a,2), round(b-a,2)) for a,b in wins])
for wi,(a,b) in enumerate(wins):
    run.clear(); sirq.clear()
    cur = None; since = None; entry = None
    for ts, comm, tid, ev, rest in events:
        if ts < a or ts > b: continue
        names.setdefault(tid, comm)
        if ev == 'sched:sched_switch':
            mm = re.search(r'prev_comm=(.*?) prev_pid=(\d+).*==> next_comm=(.*?) next_pid=(\d+)', rest)
            if not mm: continue
            p, n = int(mm.group(2)), int(mm.group(4))
            if since is not None and cur == p: run[p] += ts - since
            cur, since = n, ts
            names[n] = mm.group(3)
        elif ev == 'irq:softirq_entry':
            entry = (ts, tid)
        elif ev == 'irq:softirq_exit' and entry:
            sirq[entry[1]] += ts - entry[0]; entry = None
    print(f"window {wi}: {b-a:.2f}s")
    for tid in sorted(run, key=lambda t: -run[t])[:6]:
        print(f"  {names.get(tid,'?'):16s} {tid:7d} run {run[tid]*1e3:8.1f} ms  softirq in its context {sirq[tid]*1e3:8.1f} ms ({100*sirq[tid]/max(run[tid],1e-9):.0f}%)  own {1e3*(run[tid]-sirq[tid]):8.1f} ms")
