#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""bench-report.py LOG KVER JSON PREFIX: vdi-bench's lines -> JSON, table, plot.

Reads the "bench {json}" lines the VM printed, computes the same-boot ratios,
writes JSON (ratios at top level, raw figures under "figures"), prints a
table, and writes PREFIX.dat / PREFIX.gp for gnuplot (PREFIX.svg).
"""
import datetime
import json
import sys

log, kver, out, prefix = sys.argv[1:5]
figures, meta = {}, {}
with open(log, errors="replace") as f:
    for line in f:
        line = line.strip()
        if line.startswith("bench {"):
            fig = json.loads(line[len("bench "):])
            figures[fig["name"]] = fig
        elif line.startswith("bench-start {"):
            meta = json.loads(line[len("bench-start "):])
if "cpu_checksum_2threads_MBps" not in figures:
    sys.exit("bench: the VM did not finish the benchmark (see %s)" % log)


def med(name):
    return figures[name]["median"]


rt = med("vdi_rt_us")
ratios = {
    # lower is better: VDI's round trip over the wake-up floor
    "round_trip_vs_eventfd": rt / med("eventfd_rt_us"),
    "round_trip_vs_semaphore": rt / med("sem_rt_us"),
    # higher is better
    "stream_vs_pipe": med("vdi_stream_1024k_1dev_MBps") / med("pipe_stream_1024k_MBps"),
    "stream_vs_pipe_64k": med("vdi_stream_64k_1dev_MBps") / med("pipe_stream_64k_MBps"),
    "stream_vs_memcpy_1024k": med("vdi_stream_1024k_1dev_MBps") / med("memcpy_1024k_MBps"),
    "batched_vs_round_trip": med("vdi_batch_cps") / (1e6 / rt),
    "scale_4_vs_1": med("vdi_stream_1024k_4dev_MBps") / med("vdi_stream_1024k_1dev_MBps"),
    # context: the same checksum on 2 threads over 1, no VDI: the VM's ceiling
    "cpu_scale_2_vs_1": med("cpu_checksum_2threads_MBps") / med("cpu_checksum_1thread_MBps"),
}
# 4 devices against what the VM's 2 vCPUs can do in parallel at all, the
# same boot: the goal is 0.9 of that ceiling
ratios["scale_4_vs_cpu_ceiling"] = ratios["scale_4_vs_1"] / ratios["cpu_scale_2_vs_1"]
# the module's timed figures: on over off, from pairs measured side by side
if "vdi_rt_stats_on_us" in figures:
    ratios["stats_cost_round_trip"] = (med("vdi_rt_stats_on_us") /
                                       med("vdi_rt_stats_off_us") - 1)
    ratios["stats_cost_stream"] = (1 - med("vdi_stream_1024k_stats_on_MBps") /
                                   med("vdi_stream_1024k_stats_off_MBps"))
targets = {
    "stats_cost_round_trip": ("<=", 0.03),
    "stats_cost_stream": ("<=", 0.03),
    "round_trip_vs_eventfd": ("<=", 1.0),
    "stream_vs_pipe": (">=", 3.0),
    "batched_vs_round_trip": (">=", 10.0),
    "scale_4_vs_1": (">=", 1.8),
    "scale_4_vs_cpu_ceiling": (">=", 0.9),
}

# ---- floors and costs: the true floors, CPU time per round trip (both
# processes), and system calls per command counted by the kernel
# (bench/syscount.c).  A figure the VM did not give leaves its entry out.
def have(*names):
    return all(n in figures for n in names)


if have("spin_rt_us"):
    # lower is better: the round trip over a spinning transport's floor
    ratios["round_trip_vs_spin_floor"] = rt / med("spin_rt_us")
if have("vdi_rt_nospin_us", "futex_rt_us"):
    # VDI_SPIN_US=0 over the floor of a sleeping transport
    ratios["round_trip_nospin_vs_futex"] = med("vdi_rt_nospin_us") / med("futex_rt_us")
if have("vdi_rt_cpu_us", "eventfd_rt_cpu_us"):
    # what the spin costs: CPU per round trip, both processes, over eventfd's
    ratios["cpu_per_round_trip_vs_eventfd"] = med("vdi_rt_cpu_us") / med("eventfd_rt_cpu_us")
targets.update({
    "round_trip_vs_spin_floor": ("<=", 10.0),
    "round_trip_nospin_vs_futex": ("<=", 1.0),
    "cpu_per_round_trip_vs_eventfd": ("<=", 1.0),
})
SYSCALL_JOBS = (  # top-level name part, vdi-bench figure
    ("round_trip", "vdi_rt"),
    ("round_trip_nospin", "vdi_rt_nospin"),
    ("batch", "vdi_batch"),
    ("stream_1dev", "vdi_stream_1024k_1dev"),
    ("stream_4dev", "vdi_stream_1024k_4dev"),
)
syscalls = {}  # syscalls_per_cmd_<job>_<side>: medians
for job, fig in SYSCALL_JOBS:
    for side in ("server", "client"):
        if have("%s_syscalls_per_cmd_%s" % (fig, side)):
            syscalls["syscalls_per_cmd_%s_%s" % (job, side)] = \
                med("%s_syscalls_per_cmd_%s" % (fig, side))
# a stream at depth 8: at most one call per command on each side; fewer
# when batched
for side in ("server", "client"):
    for job in ("stream_1dev", "stream_4dev"):
        targets["syscalls_per_cmd_%s_%s" % (job, side)] = ("<=", 1.0)
    targets["syscalls_per_cmd_batch_%s" % side] = ("<", 1.0)
with open(log, errors="replace") as f:
    bench_notes = [line.strip()[2:] for line in f if line.strip().startswith("# vdi-bench:")]
# ---- end of floors and costs

# The main job (bench/mainjob.sh): cp's time over the job's, each run's pair
# measured side by side, the median of the pairs; higher is better (above 1:
# the job beat cp).  1 device, and 4 (the _4dev ones).
MAINJOB_RATIOS = {
    "backup_vs_cp": "mainjob_backup_vs_cp_1dev",
    "restore_vs_cp": "mainjob_restore_vs_cp_1dev",
    "backup_vs_cp_4dev": "mainjob_backup_vs_cp_4dev",
    "restore_vs_cp_4dev": "mainjob_restore_vs_cp_4dev",
}
for ratio_name, fig_name in MAINJOB_RATIOS.items():
    if fig_name not in figures:
        print("bench: no %s: the main job did not finish (see %s)" %
              (fig_name, log), file=sys.stderr)
        continue
    ratios[ratio_name] = med(fig_name)
    targets[ratio_name] = (">=", 1.3 if ratio_name.endswith("_4dev") else 1.0)

doc = dict(ratios)
doc.update(syscalls)
doc.update({
    "date": datetime.date.today().isoformat(),
    "kernel": kver,
    "vm": "qemu-system-x86_64 -accel tcg, 2 vCPUs",
    "meta": meta,
    "targets": {k: "%s %g" % v for k, v in targets.items()},
    "figures": figures,
})
with open(out, "w") as f:
    json.dump(doc, f, indent=2, sort_keys=True)

print("| figure | median | min | max | unit |")
print("|---|---|---|---|---|")
for name, fig in figures.items():
    print("| %s | %.4g | %.4g | %.4g | %s |" % (name, fig["median"], fig["min"], fig["max"], fig["unit"]))
print()
print("| ratio | value | target |")
print("|---|---|---|")
for name, value in ratios.items():
    t = targets.get(name)
    verdict = ""
    if t:
        ok = value <= t[1] if t[0] == "<=" else value >= t[1]
        verdict = "%s %g %s" % (t[0], t[1], "met" if ok else "NOT met")
    print("| %s | %.3f | %s |" % (name, value, verdict))

# ---- system calls per command (floors and costs)
print()
print("| system calls per command | server | client | target |")
print("|---|---|---|---|")
for job, _ in SYSCALL_JOBS:
    sides = [syscalls.get("syscalls_per_cmd_%s_%s" % (job, side)) for side in ("server", "client")]
    if sides == [None, None]:
        continue
    t = targets.get("syscalls_per_cmd_%s_server" % job)
    verdict = ""
    if t and None not in sides:
        ok = all(v <= t[1] if t[0] == "<=" else v < t[1] for v in sides)
        verdict = "%s %g %s" % (t[0], t[1], "met" if ok else "NOT met")
    print("| %s | %s | %s | %s |" % (job, *["%.3f" % v if v is not None else "-" for v in sides], verdict))
if not syscalls:
    print("| not counted | | | |")
for note in bench_notes:
    print("note: " + note)

with open(prefix + "-rt.dat", "w") as f:
    for label, name in (("spin", "spin_rt"), ("futex", "futex_rt"), ("eventfd", "eventfd_rt"),
                        ("POSIX sem", "sem_rt"), ("VDI", "vdi_rt"), ("VDI, no spin", "vdi_rt_nospin")):
        if not have(name + "_us"):
            continue
        fig = figures[name + "_us"]
        cpu = med(name + "_cpu_us") if have(name + "_cpu_us") else float("nan")
        f.write('"%s" %g %g %g %g\n' % (label, fig["median"], fig["min"], fig["max"], cpu))
with open(prefix + "-size.dat", "w") as f:
    for k in (64, 256, 1024):
        f.write("%d %g %g %g\n" % (k, med("pipe_stream_%dk_MBps" % k),
                                   med("vdi_stream_%dk_1dev_MBps" % k), med("memcpy_%dk_MBps" % k)))
with open(prefix + "-devs.dat", "w") as f:
    for d in (1, 2, 4):
        f.write("%d %g\n" % (d, med("vdi_stream_1024k_%ddev_MBps" % d)))
with open(prefix + ".gp", "w") as f:
    f.write("""set terminal svg size 1200,420 dynamic font "sans,11" background rgb "white"
set output "{p}.svg"
set multiplot layout 1,3 title "vdi vs same-boot baselines ({k}, {d})"
set style fill solid 0.6 border -1
set boxwidth 0.6
set grid ytics
set title "depth-1 round trip: time, CPU of both (us, log, lower is better)"
set logscale y
set yrange [0.05:*]
set boxwidth 0.35
set key top left
set xtics rotate by -30
plot "{p}-rt.dat" using ($0-0.18):2 with boxes title "time", \\
     "" using ($0-0.18):2:3:4 with yerrorbars lc rgb "black" notitle, \\
     "" using ($0+0.18):5 with boxes title "CPU", \\
     "" using 0:(NaN):xtic(1) notitle
unset logscale y
set yrange [0:*]
set boxwidth 0.6
set xtics norotate
set title "stream throughput by transfer size (MB/s)"
set logscale x 2
set xlabel "transfer KiB"
set key top left
plot "{p}-size.dat" using 1:3 with linespoints title "VDI (1 device)", \\
     "" using 1:2 with linespoints title "pipe", \\
     "" using 1:4 with linespoints title "memcpy"
unset logscale x
set title "VDI stream throughput by devices (1 MiB transfers, MB/s)"
set xlabel "devices (one client thread each)"
set xtics 1
plot "{p}-devs.dat" using 1:2 with linespoints title "VDI"
unset multiplot
""".format(p=prefix, k=kver, d=doc["date"]))
