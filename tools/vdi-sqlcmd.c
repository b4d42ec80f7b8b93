// SPDX-License-Identifier: GPL-2.0
/*
 * vdi-sqlcmd - a sqlcmd-compatible front end of "vdi-engine sql", so that a
 * backup vendor's test rig written for SQL Server,
 *
 *   sqlcmd -S host -U sa -P pw -Q "BACKUP DATABASE db TO VIRTUAL_DEVICE='x'"
 *
 * runs unchanged against vdi-engine.  "make install" puts it in BINDIR as
 * vdi-sqlcmd (never as sqlcmd: a real sqlcmd may be on PATH) and links
 * LIBDIR/vdi/sqlcmd-compat/sqlcmd to it; a rig puts that directory first
 * on PATH to get this one as "sqlcmd".
 *
 * It runs each batch (-Q, or the files of -i cut at "GO" lines) as
 * "vdi-engine sql BATCH" in a child, with the data directory from
 * $VDI_DATA_DIR, and forwards SIGINT/SIGTERM/SIGHUP to it (the engine then
 * aborts the set cleanly).  Connection and formatting options are accepted
 * and ignored (see usage()).  The engine is $VDI_ENGINE, else the
 * vdi-engine next to this program, else vdi-engine on PATH.
 *
 * Exit status: 0 when every statement succeeded, 1 otherwise (and for a
 * bad command line).  Unlike sqlcmd, which without -b exits 0 even after
 * a failed statement, this one always says 1: a test must not pass by
 * accident.  -b still has its other meaning: stop at the first failed
 * batch instead of going on with the next.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define FAIL	1		/* sqlcmd's error status */

static const char *me = "vdi-sqlcmd";
static volatile pid_t child;		/* the engine running, or 0 */
static volatile sig_atomic_t pending;	/* a signal came: no more batches */

static void usage(FILE *f)
{
	fprintf(f,
"Usage: %s -Q \"STATEMENT\" | -i FILE[,FILE...] [-o FILE] [-b] [ignored...]\n"
"A sqlcmd-compatible front end of 'vdi-engine sql': runs T-SQL BACKUP and\n"
"RESTORE statements to virtual devices against vdi-engine, as SQL Server\n"
"would (see vdi-engine sql --help for the statements and options).\n"
"  -Q STATEMENT   run it and exit\n"
"  -i FILE        run the file's batches (cut at lines 'GO' or 'GO n');\n"
"                 several files: -i a,b or -i a -i b\n"
"  -o FILE        write the messages (stdout and stderr) to FILE\n"
"  -b             stop at the first failed batch\n"
"  -c WORD        the batch separator instead of GO\n"
"  -e             echo each batch before running it\n"
"Accepted and ignored: -S -U -P -d -H -l -t -h -s -w -V -m -a -K -y -Y\n"
"(with a value) and -E -C -N -M -A -G -W -I -x -X -r -p -k (flags).\n"
"Environment: VDI_DATA_DIR (the database files' directory), VDI_ENGINE\n"
"(the vdi-engine to run).\n"
"Exit status: 0 if every statement succeeded, else 1 (also without -b).\n",
		me);
}

static void __attribute__((format(printf, 1, 2), noreturn))
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", me);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(FAIL);
}

static void forward(int sig)
{
	pending = sig;
	if (child > 0)
		kill(child, sig);
}

/* $VDI_ENGINE, the vdi-engine in our own directory, or "vdi-engine". */
static const char *engine_path(void)
{
	static char path[PATH_MAX];
	const char *e = getenv("VDI_ENGINE");
	ssize_t n;
	char *slash;

	if (e && *e)
		return e;
	/* /proc/self/exe is the real file even when run through the
	 * sqlcmd-compat symlink */
	n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (n > 0) {
		path[n] = '\0';
		slash = strrchr(path, '/');
		if (slash && (size_t)(slash - path) + sizeof("/vdi-engine") <=
		    sizeof(path)) {
			strcpy(slash, "/vdi-engine");
			if (access(path, X_OK) == 0)
				return path;
		}
	}
	return "vdi-engine";
}

/* Run one batch through "vdi-engine sql"; true if it succeeded. */
static bool run_batch(const char *engine, const char *batch, bool echo)
{
	/* "--": a batch may begin with a "--" comment */
	char *argv[] = { (char *)engine, "sql", "--", (char *)batch, NULL };
	sigset_t fwd, old;
	int status, fd;
	pid_t pid;

	if (pending)		/* interrupted before: do not start one */
		return false;
	if (echo) {
		printf("%s\n", batch);
		fflush(stdout);
	}
	fflush(stderr);
	/*
	 * The signals we forward wait while the child is made: in the child
	 * until it has its default handlers back (else forward() would run
	 * there and the signal be lost), in the parent until child is set.
	 */
	sigemptyset(&fwd);
	sigaddset(&fwd, SIGINT);
	sigaddset(&fwd, SIGTERM);
	sigaddset(&fwd, SIGHUP);
	sigprocmask(SIG_BLOCK, &fwd, &old);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		/* The batch is the argument, so the engine has no use for
		 * our stdin - and must not read it for a batch "-", which
		 * is vdi-engine sql's "read stdin", not a sqlcmd thing. */
		fd = open("/dev/null", O_RDONLY);
		if (fd < 0 || dup2(fd, STDIN_FILENO) < 0) {
			fprintf(stderr, "%s: /dev/null: %s\n", me,
				strerror(errno));
			_exit(127);
		}
		if (fd != STDIN_FILENO)
			close(fd);
		execvp(engine, argv);
		fprintf(stderr, "%s: cannot run %s: %s\n", me, engine,
			strerror(errno));
		_exit(127);
	}
	child = pid;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pending)		/* it came before the fork */
		kill(pid, pending);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid: %s", strerror(errno));
	child = 0;
	if (WIFSIGNALED(status))
		fprintf(stderr, "%s: vdi-engine was killed by signal %d\n", me,
			WTERMSIG(status));
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Nothing but whitespace: a batch sqlcmd would not send. */
static bool blank(const char *s)
{
	for (; *s; s++)
		if (!strchr(" \t\r\n\f\v", *s))
			return false;
	return true;
}

/* A count after GO: 1..GO_MAX (sqlcmd's own limit is higher; running a
 * backup more often than this is a typo, not a test) */
#define GO_MAX	1000

/*
 * Is @line (@len bytes, no '\n') a batch separator, "GO" or "GO n" (with
 * the separator @sep, any case; a "--" comment may follow)?  Its count
 * (1 without n); 0 if it is no separator ("GOTO x", "GOAL"); -1 if it is
 * "GO" and a blank followed by anything but a count 1..GO_MAX ("GO 0",
 * "GO x"): sqlcmd refuses such a line rather than send it to the server
 * as part of the batch, and so do we.
 */
static long separator(const char *line, size_t len, const char *sep)
{
	size_t k = 0, sl = strlen(sep);
	unsigned long count = 1;

	while (k < len && strchr(" \t\r", line[k]))
		k++;
	if (len - k < sl || strncasecmp(line + k, sep, sl))
		return 0;
	k += sl;
	if (k < len && !strchr(" \t\r", line[k]))
		return 0;	/* "GOTO", "GOAL" */
	while (k < len && strchr(" \t\r", line[k]))
		k++;
	if (k < len && line[k] >= '0' && line[k] <= '9') {
		count = 0;
		while (k < len && line[k] >= '0' && line[k] <= '9') {
			/* saturate: 18446744073709551618 must not wrap to 2 */
			if (count <= GO_MAX)
				count = count * 10 +
					(unsigned long)(line[k] - '0');
			k++;
		}
		while (k < len && strchr(" \t\r", line[k]))
			k++;
		if (!count || count > GO_MAX)
			return -1;
	}
	if (k + 1 < len && line[k] == '-' && line[k + 1] == '-')
		return (long)count;	/* "GO -- the end" */
	return k == len ? (long)count : -1;
}

static char *read_file(const char *name)
{
	FILE *f = strcmp(name, "-") ? fopen(name, "re") : stdin;
	char *buf = NULL;
	size_t cap = 0, len = 0, n;

	if (!f)
		die("%s: %s", name, strerror(errno));
	do {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap);
			if (!buf)
				die("no memory");
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n);
	if (ferror(f))
		die("reading %s: %s", name, strerror(errno));
	if (f != stdin)
		fclose(f);
	buf[len] = '\0';
	if (strlen(buf) != len)
		die("%s holds a NUL byte", name);
	return buf;
}

/* The batches to run, in order: each text with how often it runs. */
static struct batch {
	const char *text;
	unsigned long count;
} *batches;
static size_t nbatches;

static void add_batch(const char *text, unsigned long count)
{
	batches = realloc(batches, (nbatches + 1) * sizeof(*batches));
	if (!batches)
		die("no memory");
	batches[nbatches].text = text;
	batches[nbatches++].count = count;
}

/*
 * Read a file and cut it into batches at its separator lines.  All files
 * are cut before the first batch runs, so that a missing file or a bad GO
 * line stops the rig before anything has moved.  The texts stay allocated
 * till the end (the batches point into them).
 */
static void cut_file(const char *name, const char *sep)
{
	char *text = read_file(name), *batch = text, *line = text, *eol;
	unsigned long lineno = 1;
	size_t len;
	long count;

	for (;; lineno++) {
		eol = strchr(line, '\n');
		len = eol ? (size_t)(eol - line) : strlen(line);
		count = separator(line, len, sep);
		if (count < 0) {
			while (len && line[len - 1] == '\r')
				len--;
			die("%s, line %lu: syntax error near command '%.*s': "
			    "a batch ends at a line '%s' or '%s n', n from 1 "
			    "to %d", name, lineno, (int)len, line, sep, sep,
			    GO_MAX);
		}
		if (!count && eol) {
			line = eol + 1;
			continue;
		}
		if (count)
			*line = '\0';	/* the batch ends before the GO */
		if (!blank(batch))	/* sqlcmd sends no empty batch */
			add_batch(batch, count ? (unsigned long)count : 1);
		if (!eol)
			break;
		batch = line = eol + 1;
	}
}

int main(int argc, char **argv)
{
	const char *query = NULL, *out = NULL, *sep = "GO", *engine;
	char **files = NULL;
	size_t nfiles = 0, k;
	unsigned long n;
	bool stop = false, echo = false, ok = true;
	struct sigaction sa = { .sa_handler = forward };
	int c, fd;

	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-?"))) {
		usage(stdout);
		return 0;
	}
	opterr = 0;
	while ((c = getopt(argc, argv, ":Q:q:i:o:c:S:U:P:d:H:l:t:h:s:w:V:m:"
			   "a:K:y:Y:v:z:Z:ECNMAGWIxXr::pk::beL")) != -1) {
		switch (c) {
		case 'Q':
			query = optarg;
			break;
		case 'i': {
			char *s = strdup(optarg), *tok, *save = NULL;

			for (tok = strtok_r(s, ",", &save); tok;
			     tok = strtok_r(NULL, ",", &save)) {
				files = realloc(files, (nfiles + 1) *
						sizeof(*files));
				if (!files)
					die("no memory");
				files[nfiles++] = tok;
			}
			break;
		}
		case 'o':
			out = optarg;
			break;
		case 'c':
			sep = optarg;
			break;
		case 'b':
			stop = true;
			break;
		case 'e':
			echo = true;
			break;
		case 'q':
			die("-q (a query, then interactive) is not supported: "
			    "use -Q");
		case 'v':
			die("-v (scripting variables) is not supported");
		case 'z':
		case 'Z':
			die("-%c (change password) is not supported", c);
		case 'L':
			die("-L (list servers) is not supported");
		case ':':
			die("-%c needs a value", optopt);
		case '?':
			if (optopt == '?') {	/* "-?" anywhere */
				usage(stdout);
				return 0;
			}
			die("unknown option -%c (%s -? lists them)", optopt,
			    me);
		default:	/* connection and formatting: no meaning here */
			break;
		}
	}
	if (optind < argc)
		die("unexpected argument '%s'", argv[optind]);
	if (!query && !nfiles)
		die("give -Q \"STATEMENT\" or -i FILE (interactive use is not "
		    "supported)");
	if (query && nfiles)
		die("-Q and -i exclude each other");
	if (!*sep || strpbrk(sep, " \t\r\n"))
		die("-c: the batch separator is one word");
	if (out) {
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
		if (fd < 0)
			die("%s: %s", out, strerror(errno));
		if (dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
			die("%s: %s", out, strerror(errno));
		close(fd);
	}
	/* after -o: a missing file is said there, as the engine's words */
	if (query)
		add_batch(query, 1);
	for (k = 0; k < nfiles; k++)
		cut_file(files[k], sep);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	engine = engine_path();
	for (k = 0; k < nbatches && (ok || !stop) && !pending; k++)
		for (n = 0; n < batches[k].count && (ok || !stop) &&
		     !pending; n++)
			ok &= run_batch(engine, batches[k].text, echo);
	if (pending)
		fprintf(stderr, "%s: interrupted by signal %d\n", me,
			(int)pending);
	return ok && !pending ? 0 : FAIL;
}
