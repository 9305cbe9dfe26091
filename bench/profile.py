"""``python -m bench.profile [--stream | --paced] [--seconds N]``: sample the gateway with py-spy
under wrk load (concurrency 1) and print where its time goes: self time and inclusive time per
function.

py-spy is not a dependency: ``.venv/bin/pip install py-spy``. Needs ptrace (root or
``kernel.yama.ptrace_scope=0``). The collapsed stacks are kept for flame graphs.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from bench import wrk
from bench.run import body, single_gateway


def summarise(collapsed: Path, top: int, main_only: bool = True) -> str:
    self_t: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():  # a frame name py-spy wrapped onto its own line
            continue
        count = int(n)
        if stack.startswith("thread ("):  # recorded with --threads: keep the event loop only
            _, _, stack = stack.partition(";")
            if main_only and "_run_module_as_main" not in stack:
                continue
        frames = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1]
                  if " (" in f else f for f in stack.split(";")]
        total += count
        self_t[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    out = [f"{total} samples", "", "self time:"]
    out += [f"  {n / total:6.1%}  {f}" for f, n in self_t.most_common(top)]
    out += ["", "inclusive time:"]
    out += [f"  {n / total:6.1%}  {f}" for f, n in incl.most_common(top)]
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile")
    p.add_argument("--stream", action="store_true")
    p.add_argument("--paced", action="store_true",
                   help="streams from the paced upstream (one chunk a read, 1 ms apart)")
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--connections", type=int, default=1)
    p.add_argument("--top", type=int, default=45)
    p.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    p.add_argument("--native", action="store_true", help="include C frames (py-spy --native)")
    a = p.parse_args()
    NB = ["--native"] if a.native else ["--nonblocking"]
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with single_gateway("smartoken-profile-") as (t, tmp):
        url = t.paced_url if a.paced else t.url
        payload = body(t, a.stream or a.paced, paced=a.paced)
        wrk.run(url, payload, connections=a.connections, seconds=1, key=t.key)
        out = tmp / "stacks.txt"
        rec = subprocess.Popen([spy, "record", "--pid", str(t.pid), "--format", "raw",
                                "--rate", str(a.rate), "--duration", str(int(a.seconds)),
                                *NB, "--threads", "--output", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        th = threading.Thread(target=lambda: wrk.run(
            url, payload, connections=a.connections, seconds=a.seconds, key=t.key))
        th.start()
        rec.wait()
        th.join()
        print(summarise(out, a.top))
        print(f"\ncollapsed stacks: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
