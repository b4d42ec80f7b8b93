// SPDX-License-Identifier: GPL-2.0
/*
 * vdi-set-hold SET SECONDS - a test helper (selftests/tools/vdictl_test.sh):
 * open the set SET as a secondary client, the way a backup application's
 * second process would, and hold it without opening a device, until
 * SIGTERM or SECONDS pass.  A set lives as long as one of its fds: held so,
 * it stays visible after its client and engine have closed theirs (done, or
 * aborted), with all its figures, for vdictl to look at.
 *
 * Prints "held" on stdout once it holds the set; exit 0 after SECONDS, 1 if
 * the set could not be opened (libvdi's reason on stderr), 2 bad usage.
 * SIGTERM ends it at once (its default action): the module sees the fd go,
 * which ends nothing, as the secondary holds no command.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <libvdi.h>

int main(int argc, char **argv)
{
	vdi_client_set *set = NULL;
	unsigned long secs;
	char *end;
	int ret;

	if (argc != 3)
		goto usage;
	secs = strtoul(argv[2], &end, 10);
	if (*end || !argv[2][0] || !secs || secs > 3600)
		goto usage;
	set = vdi_client_set_new();
	ret = set ? vdi_client_open_in_secondary(set, argv[1]) : VD_E_MEMORY;
	if (ret) {
		fprintf(stderr, "vdi-set-hold: %s: %s: %s\n", argv[1],
			vdi_code_name(ret) ? vdi_code_name(ret) : "?",
			vdi_last_error());
		return 1;
	}
	printf("held\n");
	fflush(stdout);
	/* sleep() ends early on a caught signal only; SIGTERM kills */
	while (secs)
		secs = sleep((unsigned int)secs);
	vdi_client_close(set);
	vdi_client_set_free(set);
	return 0;
usage:
	fprintf(stderr, "usage: vdi-set-hold SET SECONDS (1..3600)\n");
	return 2;
}
