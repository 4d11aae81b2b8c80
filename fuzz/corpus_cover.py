"""Picks the inputs to commit from a libFuzzer merge control file (scripts/fuzz.sh minimize).

Usage: corpus_cover.py CONTROL_FILE BUDGET CORPUS_DIR

Keeps every seed-* file, then, greedily, the input that adds the most coverage edges not yet
covered (the smaller one on a tie), until BUDGET files are kept or no input adds an edge. Prints
the kept paths, one a line, and a one-line summary on stderr.

The control file (from `-merge=1 -merge_control_file=F`) holds the number of inputs, the number in
the first (output) directory, their paths, then per input "STARTED <i> <size>", "FT <i> ..." and
"COV <i> <edge>...".
"""

import os
import sys


def main() -> None:
    control, budget, corpus = sys.argv[1], int(sys.argv[2]), os.path.normpath(sys.argv[3])
    lines = open(control, encoding="utf-8").read().split("\n")
    n = int(lines[0])
    files = lines[2 : 2 + n]
    cov: dict[int, set[int]] = {}
    size: dict[int, int] = {}
    for line in lines[2 + n :]:
        word = line.split()
        if word and word[0] == "STARTED":
            size[int(word[1])] = int(word[2])
        elif word and word[0] == "COV":
            cov[int(word[1])] = set(map(int, word[2:]))
    ours = [i for i, f in enumerate(files) if os.path.dirname(os.path.normpath(f)) == corpus]
    keep = [i for i in ours if os.path.basename(files[i]).startswith("seed-")]
    edges: set[int] = set().union(*(cov.get(i, set()) for i in keep))
    rest = [i for i in ours if i in cov and i not in keep]
    while len(keep) < budget and rest:
        best = max(rest, key=lambda i: (len(cov[i] - edges), -size.get(i, 0)))
        if not cov[best] - edges:
            break
        keep.append(best)
        edges |= cov[best]
        rest.remove(best)
    every: set[int] = set().union(*(cov.get(i, set()) for i in ours))
    print(f"kept {len(keep)} of {len(ours)} inputs, {len(edges)} of {len(every)} edges", file=sys.stderr)
    for i in keep:
        print(files[i])


if __name__ == "__main__":
    main()
