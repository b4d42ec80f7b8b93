// SPDX-License-Identifier: GPL-2.0
/*
 * vdi-sdk-client: a backup client as a vendor writes it against SQL Server
 * on Linux's VDI SDK, built against sdk_abi.h (the SDK's layout and
 * signatures, no code) and linked with -lsqlvdi only: it stands for an SDK
 * binary run unchanged on libsqlvdi.so.  selftests/tools/sdk_binary_test.sh
 * runs it against vdi-engine in the test VM.
 *
 *   vdi-sdk-client [options] backup    SET FILE   receive a backup into FILE
 *   vdi-sdk-client [options] restore   SET FILE   serve FILE to a restore
 *   vdi-sdk-client [options] roundtrip SET FILE   backup, Close, Create the
 *                                                 same set object again,
 *                                                 restore
 * Options, the ways a client may treat the objects:
 *   --delete before-close|after-close|never   the device object (default
 *                                  never, as Microsoft's sample: the set's
 *                                  destructor deletes it)
 *   --copy-set                     work through a copy of the set object,
 *                                  Close through the original, delete the
 *                                  original: the copy is then stale
 *   --timeout MS                   GetCommand's timeout (default 90000):
 *                                  vdi-engine --inject silent tests it
 * Exit status 0 if every call returned what it should; why not on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sdk_abi.h"

static_assert(sizeof(ClientVirtualDevice) == sizeof(void *),
	      "the SDK's ClientVirtualDevice is one pointer");
static_assert(sizeof(ClientVirtualDeviceSet) == sizeof(void *),
	      "the SDK's ClientVirtualDeviceSet is one pointer");
static_assert(sizeof(VDConfig) == 44 && sizeof(VDC_Command) == 24,
	      "the SDK's structs");

/* VDI timeouts are milliseconds: 90 s, not the 90 (ms) of the sample. */
static time_t command_timeout_ms = 90000;
static const time_t config_timeout_ms = 60000;

enum del_when { DEL_NEVER, DEL_BEFORE_CLOSE, DEL_AFTER_CLOSE };

static int fail(const char *what, int code)
{
	fprintf(stderr, "vdi-sdk-client: %s: 0x%08x\n", what, (unsigned)code);
	return 1;
}

/* The GetCommand / CompleteCommand loop, until VD_E_CLOSE. */
static int transfer(ClientVirtualDevice *vd, bool backup, FILE *f,
		    unsigned long long *bytes)
{
	VDC_Command *cmd;
	int status;

	while ((status = vd->GetCommand(command_timeout_ms, &cmd)) == 0) {
		unsigned long done = 0;
		int code = ERROR_SUCCESS;

		switch (cmd->commandCode) {
		case VDC_Write:
			done = fwrite(cmd->buffer, 1, cmd->size, f);
			if (done != (unsigned long)cmd->size)
				code = ERROR_DISK_FULL;
			break;
		case VDC_Read:
			done = fread(cmd->buffer, 1, cmd->size, f);
			if (done != (unsigned long)cmd->size)
				code = ERROR_HANDLE_EOF;
			break;
		case VDC_Flush:
			if (fflush(f))
				code = ERROR_DISK_FULL;
			break;
		case VDC_ClearError:
		case VDC_Complete:
			break;
		default:
			code = ERROR_NOT_SUPPORTED;
			break;
		}
		*bytes += done;
		status = vd->CompleteCommand(cmd, code, done, 0);
		if (status)
			return fail("CompleteCommand", status);
	}
	if (status != VD_E_CLOSE)
		return fail(backup ? "GetCommand (backup)" :
			    "GetCommand (restore)", status);
	return 0;
}

/*
 * One backup or restore on the set object @work; @closer Closes it (the
 * same object, or the original of a copy).
 */
static int session(ClientVirtualDeviceSet *work, ClientVirtualDeviceSet *closer,
		   char *name, bool backup, const char *path, del_when when)
{
	ClientVirtualDevice *vd = NULL;
	unsigned long long bytes = 0;
	VDC_Command *cmd;
	VDConfig config;
	int status, bad = 0;
	FILE *f;

	f = fopen(path, backup ? "wb" : "rb");
	if (!f) {
		perror(path);
		return 1;
	}
	memset(&config, 0, sizeof(config));
	config.deviceCount = 1;
	status = work->Create(name, &config);
	if (status) {
		fclose(f);
		return fail("Create", status);
	}
	status = work->GetConfiguration(config_timeout_ms, &config);
	if (status)
		bad = fail("GetConfiguration", status);
	if (!bad) {
		status = work->OpenDevice(name, &vd);
		if (status || !vd)
			bad = fail("OpenDevice", status);
	}
	if (!bad)
		bad = transfer(vd, backup, f, &bytes);
	if (fclose(f))
		bad = fail("fclose", 0);
	if (when == DEL_BEFORE_CLOSE) {
		delete vd;
		vd = NULL;
	}
	status = closer->Close();
	if (status && !bad)
		bad = fail("Close", status);
	if (when == DEL_AFTER_CLOSE && vd) {
		/* After Close the device answers, but with no command. */
		status = vd->GetCommand(0, &cmd);
		if (status == 0 || status == VD_E_TIMEOUT)
			bad = fail("GetCommand after Close", status);
		delete vd;
	}
	fprintf(stderr, "vdi-sdk-client: %s: %llu bytes\n",
		backup ? "backup" : "restore", bytes);
	return bad;
}

static void usage(void)
{
	fprintf(stderr, "usage: vdi-sdk-client [--delete before-close|"
		"after-close|never] [--copy-set] [--timeout MS] "
		"backup|restore|roundtrip "
		"SET FILE\n");
	exit(2);
}

int main(int argc, char **argv)
{
	del_when when = DEL_NEVER;
	bool copy = false;
	int i, bad = 0;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--copy-set")) {
			copy = true;
		} else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			char *end;

			command_timeout_ms = strtol(argv[++i], &end, 10);
			if (!*argv[i] || *end || command_timeout_ms <= 0)
				usage();
		} else if (!strcmp(argv[i], "--delete") && i + 1 < argc) {
			i++;
			if (!strcmp(argv[i], "before-close"))
				when = DEL_BEFORE_CLOSE;
			else if (!strcmp(argv[i], "after-close"))
				when = DEL_AFTER_CLOSE;
			else if (!strcmp(argv[i], "never"))
				when = DEL_NEVER;
			else
				usage();
		} else {
			usage();
		}
	}
	if (argc - i != 3)
		usage();
	const char *mode = argv[i];
	char *name = argv[i + 1];
	const char *path = argv[i + 2];
	bool roundtrip = !strcmp(mode, "roundtrip");

	if (!roundtrip && strcmp(mode, "backup") && strcmp(mode, "restore"))
		usage();
	/* As SDK clients do: SQL Server is another user. */
	umask(0);
	ClientVirtualDeviceSet *vds = new ClientVirtualDeviceSet();

	if (copy) {
		ClientVirtualDeviceSet work(*vds);

		bad = session(&work, vds, name, strcmp(mode, "restore"), path,
			      when);
		if (!bad && roundtrip)
			bad = session(&work, vds, name, false, path, when);
		delete vds;
		/* The copy of a destroyed set: refused, and its destructor
		 * (at the end of this block) does nothing. */
		int status = work.Close();
		if (status != VD_E_PROTOCOL)
			bad = fail("Close of a stale copy", status);
		return bad;
	}
	bad = session(vds, vds, name, strcmp(mode, "restore"), path, when);
	if (!bad && roundtrip)
		bad = session(vds, vds, name, false, path, when);
	delete vds;
	return bad;
}
