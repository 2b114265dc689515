#!/usr/bin/env python3
"""CPU seconds spent per fuzz target (docs/reliability.md, "Runs").

Every 2 s, reads utime+stime of each running afl-fuzz and of its descendants
(the fork server and the persistent target process) from /proc, keyed by
"target|output dir", and keeps the last value seen of each process. afl-fuzz
never reaps the persistent target process, so `time scripts/fuzz-afl.sh`
misses nearly all of the target's CPU; sampling /proc while the processes
live does not (a process's last 2 s before it exits can be missed).

  python3 scripts/fuzz-cpu-sampler.py &     # writes /tmp/primacy-afl/cpu-sampled.json
  touch /tmp/primacy-afl/STOP-SAMPLER       # stops it
"""
import json
import os
import time

TICK = os.sysconf('SC_CLK_TCK')
out = '/tmp/primacy-afl/cpu-sampled.json'
os.makedirs(os.path.dirname(out), exist_ok=True)
try:
    state = json.load(open(out))
except Exception:
    state = {}
last = state.setdefault('pids', {})   # "pid:starttime" -> [key, cpu seconds]
tot = state.setdefault('done', {})    # key -> cpu seconds of processes gone
def scan():
    seen = {}
    procs = {}
    for pid in os.listdir('/proc'):
        if not pid.isdigit(): continue
        try:
            cmd = open(f'/proc/{pid}/cmdline','rb').read().split(b'\0')
            st = open(f'/proc/{pid}/stat').read()
        except Exception:
            continue
        rest = st[st.rindex(')')+2:].split()
        ppid = int(rest[1]); ut = int(rest[11]); stt = int(rest[12]); start = rest[19]
        procs[pid] = (cmd, ppid, (ut+stt)/TICK, start)
    keys = {}
    for pid,(cmd,ppid,cpu,start) in procs.items():
        if cmd and cmd[0].endswith(b'afl-fuzz'):
            a = [c.decode(errors='replace') for c in cmd]
            try: o = a[a.index('-o')+1]
            except ValueError: continue
            # cmdline ends "... fuzz-afl <target>\0": the last field is empty
            t = a[-2] if len(a) >= 2 else '?'
            keys[pid] = f'{t}|{o}'
    def key_of(pid, depth=0):
        if pid in keys: return keys[pid]
        if depth > 4 or pid not in procs: return None
        return key_of(str(procs[pid][1]), depth+1)
    for pid,(cmd,ppid,cpu,start) in procs.items():
        k = key_of(pid)
        if k: seen[f'{pid}:{start}'] = [k, cpu]
    return seen
while True:
    seen = scan()
    for pid,(k,cpu) in list(last.items()):
        if pid not in seen:
            tot[k] = tot.get(k,0)+cpu; del last[pid]
    last.update(seen)
    summary = dict(tot)
    for k,cpu in last.values(): summary[k] = summary.get(k,0)+cpu
    state['summary'] = summary; state['at'] = time.strftime('%FT%TZ', time.gmtime())
    json.dump(state, open(out+'.tmp','w'), indent=1); os.replace(out+'.tmp', out)
    if os.path.exists('/tmp/primacy-afl/STOP-SAMPLER'): break
    time.sleep(2)
