"""`python -X importtime` of a real plain jsub and qsub, two source trees run alternately.

    git archive REV | tar -x -C /tmp/before      # the tree to compare with
    .venv/bin/python -m compileall -q /tmp/before/src src
    sandbox/become TOOL .venv/bin/python bench/imports.py /tmp/before/src src [RUNS]

Run it as a sandbox tool whose namespace has no finished Jobs near its quota (a submission that must
make room imports more). Prints, per command and tree, the median (and least) of the per-run sums of
top-level cumulative import times, the module count, and the largest cumulative imports (least of the
runs for each module). qsub submits /tmp/gridshim-imports-job.sh, a 3-line script written here.
"""

from __future__ import annotations

import collections
import os
import statistics
import subprocess
import sys

CODE = {
    "jsub": 'import sys; sys.argv=["jsub","-quiet","-N","imp","/bin/true"]; from gridshim.cli.jsub import jsub_main; jsub_main()',
    "qsub": 'import sys; sys.argv=["qsub","-terse","/tmp/gridshim-imports-job.sh"]; from gridshim.cli.qsub import main; main()',
}


def one(tree: str, code: str) -> tuple[int, dict[str, tuple[int, int]]]:
    p = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env={**os.environ, "PYTHONPATH": tree},
                       capture_output=True, text=True, cwd="/tmp", check=False)
    mods: dict[str, tuple[int, int]] = {}
    total = 0
    for line in p.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cum_us, name = line[len("import time:"):].split("|")
        if len(name) - len(name.lstrip(" ")) == 1:  # one space after the bar: a top-level import
            total += int(cum_us)
        mods[name.strip()] = (int(self_us), int(cum_us))
    return total, mods


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    trees = {"before": os.path.abspath(argv[0]), "after": os.path.abspath(argv[1])}
    runs = int(argv[2]) if len(argv) > 2 else 9
    with open("/tmp/gridshim-imports-job.sh", "w") as f:
        f.write("#!/bin/bash\n#$ -N imports\ntrue\n")
    res: dict[tuple[str, str], list[tuple[int, dict[str, tuple[int, int]]]]] = collections.defaultdict(list)
    for _ in range(runs):
        for cmd, code in CODE.items():
            for label, tree in trees.items():
                res[(label, cmd)].append(one(tree, code))
    for cmd in CODE:
        print(f"== {cmd}")
        for label in trees:
            got = res[(label, cmd)]
            totals = [t / 1000 for t, _ in got]
            print(f"  {label:6s}: imports median {statistics.median(totals):.1f} ms (least {min(totals):.1f}), "
                  f"{statistics.median(len(m) for _, m in got):.0f} modules")
        for label in trees:
            least: dict[str, int] = {}
            for _, mods in res[(label, cmd)]:
                for m, (_s, c) in mods.items():
                    least[m] = min(least.get(m, c), c)
            top = sorted(least.items(), key=lambda kv: -kv[1])[:16]
            print(f"  {label} largest cumulative, ms: " + "; ".join(f"{m} {c / 1000:.1f}" for m, c in top))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
