#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""flamegraph.py: perf samples -> folded stacks, a flame graph, top entries.

    flamegraph.py LOG OUTDIR     every profile bench/profile.sh put on the VM's
                                 console (LOG: build/bench-KVER.log)
    flamegraph.py --script FILE OUTDIR NAME
                                 one "perf script" text output

Input: "perf script -F comm,tid,cpu,time,ip,sym,dso" text: a header line
per sample ("comm tid [cpu] time:", the time optional), then its call chain one frame a line, leaf first
("addr symbol (dso)"), then a blank line.  On the console, each profile is
gzip + base64 between "# perf-script: begin NAME" and "# perf-script: end
NAME".

For each profile NAME it writes OUTDIR/flame-NAME.folded (one line per
distinct stack: "process;root;...;leaf count"), OUTDIR/flame-NAME.svg (the
flame graph: the process at the bottom, each frame as wide as its share of
the samples; kernel frames marked [k]) and OUTDIR/flame-NAME.txt, and prints
that text: the samples by process, and self time by function (the leaf
frames) and by shared object.  All samples are of cpu-clock over all CPUs,
so the idle CPU is there too, as process "swapper".
"""
import base64
import collections
import gzip
import html
import os
import re
import sys
import zlib

TOP = 15


# ------------------------------------------------------------------ reading
def console_profiles(log):
    """(name, perf script text) for each profile in a console log."""
    name, chunks = None, []
    with open(log, errors="replace") as f:
        for line in f:
            line = line.strip().replace("\r", "")
            m = re.match(r"^# perf-script: (begin|end) (\S+)$", line)
            if m and m.group(1) == "begin":
                name, chunks = m.group(2), []
            elif m and name:
                try:
                    data = gzip.decompress(base64.b64decode("".join(chunks)))
                except (ValueError, OSError, EOFError, zlib.error) as e:
                    print("flamegraph: profile %s is damaged on the console "
                          "(%s): skipped" % (name, e), file=sys.stderr)
                else:
                    yield name, data.decode(errors="replace")
                name = None
            elif name and re.fullmatch(r"[A-Za-z0-9+/=]+", line):
                chunks.append(line)


HEADER = re.compile(r"^(\S.*?)\s+(-?\d+)\s+\[(\d+)\](?:\s+(\d+\.\d+):)?\s*$")
FRAME = re.compile(r"^\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$")


def samples(text):
    """(process, time or None, [(symbol, dso), ...] leaf first) for each
    sample."""
    comm, when, frames = None, None, []
    for line in text.splitlines() + [""]:
        if not line.strip():
            if comm is not None:
                yield comm, when, frames
            comm, when, frames = None, None, []
            continue
        if comm is None:
            m = HEADER.match(line)
            comm = m.group(1) if m else line.split()[0]
            when = float(m.group(4)) if m and m.group(4) else None
            continue
        m = FRAME.match(line)
        if m:
            frames.append((m.group(2), m.group(3)))


USER_BRACKETS = ("[unknown]", "[vdso]", "[vsyscall]", "[heap]", "[stack]")


def frame_name(sym, dso):
    """A frame's label: the symbol, [k] for the kernel's, else the object."""
    # the kernel's and its modules' (such as "[vdi]") are in brackets
    kernel = dso.startswith("[") and dso not in USER_BRACKETS
    if sym and sym != "[unknown]":
        sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
        return sym + ("_[k]" if kernel else "")
    if dso and dso != "[unknown]":
        return "[%s]" % os.path.basename(dso)
    return "[unknown]"


def fold(text):
    """Counter of "process;root;...;leaf" stacks, and the leaf counters."""
    stacks = collections.Counter()
    by_func, by_proc, by_dso = (collections.Counter() for _ in range(3))
    span = [None, None]     # the first and last sample's time
    for comm, when, frames in samples(text):
        if when is not None:
            span[0] = when if span[0] is None else min(span[0], when)
            span[1] = when if span[1] is None else max(span[1], when)
        names = [frame_name(s, d) for s, d in frames]
        # a chain the unwinder could not follow ends in [unknown] frames
        # with address 0: they say nothing
        while len(names) > 1 and names[-1] == "[unknown]":
            names.pop()
        leaf = names[0] if names else "[unknown]"
        stacks[";".join([comm] + names[::-1])] += 1
        by_proc[comm] += 1
        by_func[leaf] += 1
        by_dso[os.path.basename(frames[0][1]) if frames else "[unknown]"] += 1
    seconds = span[1] - span[0] if span[0] is not None else None
    return stacks, by_func, by_proc, by_dso, seconds


# ------------------------------------------------------------------ text
def top_text(name, by_func, by_proc, by_dso, seconds):
    total = sum(by_proc.values())
    out = ["profile %s: %d samples (cpu-clock, all CPUs)%s" % (
        name, total, " over %.2f s" % seconds if seconds else "")]
    for title, counter in (("by process", by_proc),
                           ("self time by function", by_func),
                           ("self time by object", by_dso)):
        out.append("  %s:" % title)
        for key, n in counter.most_common(TOP):
            out.append("    %5.1f%%  %7d  %s" % (100.0 * n / max(total, 1),
                                                 n, key))
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ SVG
ROW = 17            # px per stack level
WIDTH = 1200        # px of the graph
PAD = 10
FONT = 12
CHAR_W = 7.0        # px per character at FONT, near enough for clipping


class Node:
    __slots__ = ("name", "count", "children")

    def __init__(self, name):
        self.name, self.count, self.children = name, 0, {}


def tree(stacks):
    root = Node("all")
    for stack, n in stacks.items():
        root.count += n
        node = root
        for frame in stack.split(";"):
            node = node.children.setdefault(frame, Node(frame))
            node.count += n
    return root


def depth(node):
    return 1 + max((depth(c) for c in node.children.values()), default=0)


def colour(name, level):
    """Stable colours: idle grey, kernel orange, processes blue, user red."""
    h = zlib.crc32(name.encode()) & 0xffff
    if level == 1:
        return "rgb(%d,%d,%d)" % (90 + h % 40, 140 + h % 50, 210)
    if "swapper" in name or "idle" in name or name.startswith("default_idle"):
        return "rgb(180,180,180)"
    if name.endswith("_[k]"):
        return "rgb(%d,%d,%d)" % (230, 140 + h % 70, 40 + h % 40)
    return "rgb(%d,%d,%d)" % (220 + h % 35, 70 + h % 90, 60 + h % 40)


def svg(stacks, title):
    root = tree(stacks)
    levels = depth(root)
    height = levels * ROW + 3 * PAD + 2 * FONT
    total = max(root.count, 1)
    scale = (WIDTH - 2 * PAD) / total
    out = ['<?xml version="1.0" standalone="no"?>',
           '<svg version="1.1" xmlns="http://www.w3.org/2000/svg" '
           'width="%d" height="%d" viewBox="0 0 %d %d" font-family="monospace" '
           'font-size="%d">' % (WIDTH, height, WIDTH, height, FONT),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="%d" font-size="%d">%s</text>' % (
               PAD, PAD + FONT, FONT + 2, html.escape(title))]

    def draw(node, x, level, path):
        y = height - PAD - (level + 1) * ROW
        w = node.count * scale
        if w < 0.3:
            return
        share = 100.0 * node.count / total
        tip = "%s (%d samples, %.2f%%)" % (path, node.count, share)
        out.append('<g><title>%s</title><rect x="%.2f" y="%d" width="%.2f" '
                   'height="%d" fill="%s" stroke="white" stroke-width="0.5"/>'
                   % (html.escape(tip), x, y, w, ROW - 1,
                      colour(node.name, level)))
        chars = int((w - 4) / CHAR_W)
        if chars >= 3:
            label = node.name if len(node.name) <= chars else \
                node.name[:chars - 2] + ".."
            out.append('<text x="%.2f" y="%d">%s</text>' % (
                x + 2, y + ROW - 5, html.escape(label)))
        out.append("</g>")
        cx = x
        for child in sorted(node.children.values(), key=lambda c: c.name):
            draw(child, cx, level + 1, child.name)
            cx += child.count * scale

    draw(root, PAD, 0, "all")
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ main
def write_profile(name, text, outdir):
    stacks, by_func, by_proc, by_dso, seconds = fold(text)
    if not stacks:
        print("flamegraph: profile %s has no samples" % name, file=sys.stderr)
        return False
    base = os.path.join(outdir, "flame-%s" % name)
    with open(base + ".folded", "w") as f:
        for stack, n in sorted(stacks.items()):
            f.write("%s %d\n" % (stack, n))
    with open(base + ".svg", "w") as f:
        f.write(svg(stacks, "%s: %d cpu-clock samples over all CPUs "
                    "(width: share of samples; hover for the numbers)" %
                    (name, sum(stacks.values()))))
    text = top_text(name, by_func, by_proc, by_dso, seconds)
    with open(base + ".txt", "w") as f:
        f.write(text)
    print(text)
    print("flamegraph: wrote %s.svg" % base)
    return True


def main(argv):
    if len(argv) == 5 and argv[1] == "--script":
        with open(argv[2], errors="replace") as f:
            return 0 if write_profile(argv[4], f.read(), argv[3]) else 1
    if len(argv) != 3:
        sys.exit(__doc__)
    found = 0
    for name, text in console_profiles(argv[1]):
        found += write_profile(name, text, argv[2])
    if not found:
        print("flamegraph: no profiles in %s (was perf in the image? see its "
              "'# profile:' lines)" % argv[1], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
