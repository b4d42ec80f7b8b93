# SPDX-License-Identifier: GPL-2.0
# make bench: VDI against same-boot baselines in the VM (scripts/bench.sh),
# and the main job (vdi-engine + vdi-client backup and restore of a file)
# against cp (bench/mainjob.sh), with perf profiles (bench/profile.sh);
# writes build/bench.json, build/bench.svg and build/flame-*.svg.
.PHONY: bench

BENCH_SRCS := $(addprefix $(ROOT)/bench/,vdi_bench.c baselines.c common.c syscount.c)

$(B)/vdi-bench: $(BENCH_SRCS) $(ROOT)/bench/bench.h $(LIBVDI_SO)
	$(CC) -O2 -g -Wall -Wextra -pthread -I$(ROOT)/include -I$(ROOT)/include/uapi -o $@ \
		$(BENCH_SRCS) -L$(B) -l:libvdi.so.1

bench: ksrc
	@$(S)/deps.sh
	@# a sub-make: it sees the kernels deps.sh may just have fetched
	@$(MAKE) --no-print-directory $(B)/vdi-bench modules tools
	@$(S)/bench.sh
