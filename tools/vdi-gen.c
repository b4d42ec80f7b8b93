// SPDX-License-Identifier: GPL-2.0
/*
 * vdi-gen - the deterministic test data of the vdi tools.
 *
 *   vdi-gen SIZE            write the SIZE-byte stream to stdout
 *   vdi-gen --check SIZE    compare stdin with it, byte for byte
 *
 * The stream is the one 'vdi-engine backup --generate SIZE' sends (see
 * gen_fill() in common.h), so a restore can be checked without keeping a
 * copy of the data:  vdi-engine restore SET | vdi-gen --check SIZE
 * Both print the stream's mx64 checksum on stderr, as the engine does.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

#define BUF	(1 << 20)

static void usage(FILE *f)
{
	fprintf(f,
"Usage: vdi-gen SIZE           write SIZE bytes of test data to stdout\n"
"       vdi-gen --check SIZE   compare stdin with those bytes\n"
"SIZE takes K, M, G suffixes (powers of 1024).  --check prints 'identical'\n"
"and exits 0 when stdin is exactly that data, else says where it differs\n"
"and exits 1.  The mx64 checksum goes to stderr as 'checksum <hex> <n> bytes'.\n");
}

/* Fill up to len bytes from stdin; short only at end of input. */
static ssize_t read_full(uint8_t *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = read(STDIN_FILENO, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int check(uint64_t size, uint8_t *want, uint8_t *got)
{
	struct mx64 sum;
	uint64_t at = 0;
	ssize_t n;
	size_t len, i;

	mx64_init(&sum);
	for (;;) {
		len = size - at < BUF ? (size_t)(size - at) : BUF;
		/* one byte more than expected shows a longer input */
		n = read_full(got, len ? len : 1);
		if (n < 0) {
			msg("reading stdin: %s", strerror(errno));
			return EXIT_FAIL;
		}
		if (!len) {
			if (n) {
				msg("differs: the input is longer than %"
				    PRIu64 " bytes", size);
				return EXIT_FAIL;
			}
			break;
		}
		gen_fill(want, at, (size_t)n);
		if (memcmp(want, got, (size_t)n)) {
			for (i = 0; want[i] == got[i]; i++)
				;
			msg("differs at byte %" PRIu64, at + i);
			return EXIT_FAIL;
		}
		mx64_update(&sum, got, (size_t)n);
		at += (uint64_t)n;
		if ((size_t)n < len) {
			msg("differs: the input ends after %" PRIu64 " of %"
			    PRIu64 " bytes", at, size);
			return EXIT_FAIL;
		}
	}
	printf("identical: %" PRIu64 " bytes\n", size);
	fprintf(stderr, "checksum %016" PRIx64 " %" PRIu64 " bytes\n",
		mx64_final(&sum), size);
	return 0;
}

static int generate(uint64_t size, uint8_t *buf)
{
	struct mx64 sum;
	uint64_t at = 0;
	size_t len;
	int err;

	mx64_init(&sum);
	while (at < size) {
		len = size - at < BUF ? (size_t)(size - at) : BUF;
		gen_fill(buf, at, len);
		mx64_update(&sum, buf, len);
		err = write_all(STDOUT_FILENO, buf, len);
		if (err) {
			msg("writing stdout: %s", strerror(err));
			return EXIT_FAIL;
		}
		at += len;
	}
	fprintf(stderr, "checksum %016" PRIx64 " %" PRIu64 " bytes\n",
		mx64_final(&sum), size);
	return 0;
}

int main(int argc, char **argv)
{
	bool do_check = false;
	uint8_t *a, *b;
	uint64_t size;

	prog = "vdi-gen";
	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "--check")) {
		do_check = true;
		argv++;
		argc--;
	}
	if (argc != 2)
		usage_error("give one SIZE");
	if (!parse_size(argv[1], &size))
		usage_error("bad size '%s'", argv[1]);
	a = malloc(BUF);
	b = malloc(BUF);
	if (!a || !b) {
		msg("no memory");
		return EXIT_FAIL;
	}
	grow_pipe(do_check ? STDIN_FILENO : STDOUT_FILENO);
	return do_check ? check(size, a, b) : generate(size, a);
}
