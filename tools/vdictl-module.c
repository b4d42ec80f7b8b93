// SPDX-License-Identifier: GPL-2.0
/*
 * vdictl status and vdictl load: the module itself.  status reads sysfs,
 * stats /dev/vdi and asks the module its API (VDI_IOC_VERSION) only when
 * it is loaded: looking must not load it.  load is the one command that
 * does, through libkmod as modprobe would.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libkmod.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "vdictl.h"

#define SYS_MODULE	"/sys/module/vdi"
#define NODE		"/dev/" VDI_DEVICE_NAME
#define LOAD_WAIT_S	10	/* for devtmpfs / udev to create the node */
#define PARAMS_MAX	64

int module_loaded(void)
{
	struct stat sb;

	if (!stat(SYS_MODULE, &sb))
		return 1;
	return stat("/sys/module", &sb) ? -1 : 0;
}

/* The first line of a sysfs file into buf, or NULL if it cannot be read. */
static const char *read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	char *nl;

	if (!f)
		return NULL;
	if (!fgets(buf, (int)len, f)) {
		fclose(f);
		return NULL;
	}
	fclose(f);
	nl = strchr(buf, '\n');
	if (nl)
		*nl = '\0';
	return buf;
}

/* ------------------------------------------------------------ what status
 * gathers, then prints as text or JSON */
struct param {
	char name[256];		/* a file name */
	char value[128];
	bool readable;
};

struct status {
	int loaded;			/* module_loaded() */
	char initstate[32], refcnt[32], version[64], srcversion[64];
	bool has_initstate, has_refcnt, has_version, has_srcversion;
	char path[512];			/* installed module, "" if not found */
	char kernel[128];
	struct param params[PARAMS_MAX];
	unsigned int nparams;
	bool node;			/* /dev/vdi exists */
	struct stat node_st;
	bool node_access;		/* we may open it read-write */
	bool api;			/* VDI_IOC_VERSION answered */
	int api_errno;			/* why not, if we tried */
	struct vdi_version ver;
};

static int param_cmp(const void *a, const void *b)
{
	return strcmp(((const struct param *)a)->name,
		      ((const struct param *)b)->name);
}

static void gather_params(struct status *s)
{
	DIR *d = opendir(SYS_MODULE "/parameters");
	struct dirent *e;
	char path[512];

	if (!d)
		return;
	while ((e = readdir(d)) && s->nparams < PARAMS_MAX) {
		struct param *p = &s->params[s->nparams];

		if (e->d_name[0] == '.')
			continue;
		snprintf(p->name, sizeof(p->name), "%s", e->d_name);
		snprintf(path, sizeof(path), SYS_MODULE "/parameters/%s",
			 e->d_name);
		p->readable = read_line(path, p->value, sizeof(p->value));
		s->nparams++;
	}
	closedir(d);
	qsort(s->params, s->nparams, sizeof(s->params[0]), param_cmp);
}

/* Where libkmod finds the module for this kernel: reading modules.dep
 * loads nothing. */
static void gather_path(struct status *s)
{
	struct kmod_module *mod = NULL;
	struct kmod_ctx *ctx = kmod_new(NULL, NULL);
	const char *p;

	if (!ctx)
		return;
	kmod_set_log_priority(ctx, 0);
	if (!kmod_module_new_from_name(ctx, "vdi", &mod)) {
		p = kmod_module_get_path(mod);
		if (p)
			snprintf(s->path, sizeof(s->path), "%s", p);
		kmod_module_unref(mod);
	}
	kmod_unref(ctx);
}

static void gather_api(struct status *s)
{
	int fd;

	s->ver.api_major = VDI_API_MAJOR;
	s->ver.api_minor = VDI_API_MINOR;
	fd = open(NODE, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		s->api_errno = errno;
		return;
	}
	if (ioctl(fd, VDI_IOC_VERSION, &s->ver) < 0)
		s->api_errno = errno;
	else
		s->api = true;
	close(fd);
}

static void gather(struct status *s)
{
	struct utsname u;

	memset(s, 0, sizeof(*s));
	s->loaded = module_loaded();
	if (!uname(&u))
		snprintf(s->kernel, sizeof(s->kernel), "%s", u.release);
	gather_path(s);
	if (s->loaded == 1) {
		s->has_initstate = read_line(SYS_MODULE "/initstate", s->initstate,
					     sizeof(s->initstate));
		s->has_refcnt = read_line(SYS_MODULE "/refcnt", s->refcnt,
					  sizeof(s->refcnt));
		s->has_version = read_line(SYS_MODULE "/version", s->version,
					   sizeof(s->version));
		s->has_srcversion = read_line(SYS_MODULE "/srcversion",
					      s->srcversion,
					      sizeof(s->srcversion));
		gather_params(s);
	}
	s->node = !stat(NODE, &s->node_st);
	if (s->node) {
		s->node_access = !access(NODE, R_OK | W_OK);
		/* without sysfs the node is the only sign of the module; a
		 * stale node of an unloaded module names no driver: ENXIO */
		if (s->loaded != 0)
			gather_api(s);
	}
}

static const struct {
	uint64_t bit;
	const char *name;
} feat_names[] = {
	{ VDI_FEAT_BATCH, "batch" }, { VDI_FEAT_POLL, "poll" },
	{ VDI_FEAT_SECONDARY, "secondary" }, { VDI_FEAT_WATCHDOG, "watchdog" },
	{ VDI_FEAT_GROUP_ACCESS, "group-access" },
	{ VDI_FEAT_SET_INFO, "set-info" }, { VDI_FEAT_STATS, "stats" },
};
#define NFEAT	(sizeof(feat_names) / sizeof(feat_names[0]))

static const char *feat_name(unsigned int bit, char *buf, size_t len)
{
	unsigned int i;

	for (i = 0; i < NFEAT; i++)
		if (feat_names[i].bit == 1ULL << bit)
			return feat_names[i].name;
	snprintf(buf, len, "bit%u", bit);
	return buf;
}

/* "crw-rw----" */
static const char *mode_string(mode_t m, char *buf)
{
	static const char rwx[] = "rwxrwxrwx";
	int i;

	buf[0] = S_ISCHR(m) ? 'c' : S_ISBLK(m) ? 'b' : S_ISDIR(m) ? 'd' :
		 S_ISREG(m) ? '-' : S_ISLNK(m) ? 'l' : '?';
	for (i = 0; i < 9; i++)
		buf[i + 1] = m & (0400 >> i) ? rwx[i] : '-';
	buf[10] = '\0';
	return buf;
}

static const char *node_kind(mode_t m)
{
	return S_ISCHR(m) ? "character device" : S_ISBLK(m) ? "block device" :
	       S_ISREG(m) ? "regular file (not a device!)" : "not a device";
}

/* ------------------------------------------------------------ as text */
static void status_text(const struct status *s)
{
	char b1[32], u[64], g[64], fb[16];
	unsigned int i;
	bool any;

	if (s->loaded == 1) {
		printf("module:     loaded%s%s%s%s%s\n",
		       s->has_initstate ? " (" : "",
		       s->has_initstate ? s->initstate : "",
		       s->has_initstate ? ")" : "",
		       s->has_refcnt ? ", used by " : "",
		       s->has_refcnt ? s->refcnt : "");
		printf("            version %s, srcversion %s\n",
		       s->has_version ? s->version : "not set",
		       s->has_srcversion ? s->srcversion : "not set");
	} else if (s->loaded == 0) {
		printf("module:     not loaded (vdictl load)\n");
	} else {
		printf("module:     unknown: no /sys/module (is sysfs mounted?)\n");
	}
	if (s->path[0])
		printf("            installed: %s\n", s->path);
	else
		printf("            not installed for kernel %s (see README: DKMS)\n",
		       s->kernel);

	if (!s->node)
		printf("node:       %s: missing\n", NODE);
	else
		printf("node:       %s: %s %u:%u, %s (%04o), owner %s, group %s; "
		       "you %s open it\n", NODE, node_kind(s->node_st.st_mode),
		       major(s->node_st.st_rdev), minor(s->node_st.st_rdev),
		       mode_string(s->node_st.st_mode, b1),
		       s->node_st.st_mode & 07777,
		       user_name(s->node_st.st_uid, u, sizeof(u)),
		       group_name(s->node_st.st_gid, g, sizeof(g)),
		       s->node_access ? "may" : "may not");

	if (s->api || s->api_errno == EPROTONOSUPPORT) {
		printf("api:        %u.%u%s\n", s->ver.api_major, s->ver.api_minor,
		       s->api ? "" : " (not vdictl's: it speaks 1.x)");
		printf("features:  ");
		for (any = false, i = 0; i < 64; i++) {
			if (!(s->ver.features & (1ULL << i)))
				continue;
			printf(" %s", feat_name(i, fb, sizeof(fb)));
			any = true;
		}
		printf("%s\n", any ? "" : " none");
		printf("limits:     %u devices per set, queue depth %u, names "
		       "%u bytes, %u sets per user, buffer area %s\n",
		       s->ver.max_devices, s->ver.max_queue_depth,
		       s->ver.name_max ? s->ver.name_max - 1 : 0,
		       s->ver.max_sets_per_user,
		       fmt_bytes(b1, sizeof(b1), s->ver.max_area_size));
	} else if (s->api_errno) {
		printf("api:        unknown: %s: %s\n", NODE, strerror(s->api_errno));
	}

	if (s->loaded == 1) {
		printf("parameters:%s\n", s->nparams ? "" : " none");
		for (i = 0; i < s->nparams; i++)
			printf("            %-24s %s\n", s->params[i].name,
			       s->params[i].readable ? s->params[i].value :
			       "(not readable)");
	}
}

/* ------------------------------------------------------------ as JSON */
/* A parameter's value: a number if it is one, Y/N as a boolean. */
static void param_json(struct json *j, const struct param *p)
{
	const char *v = p->value;
	char *end;

	if (!p->readable) {
		json_null(j, p->name);
		return;
	}
	if (!strcmp(v, "Y") || !strcmp(v, "N")) {
		json_bool(j, p->name, v[0] == 'Y');
		return;
	}
	errno = 0;
	if (v[0] >= '0' && v[0] <= '9') {
		unsigned long long n = strtoull(v, &end, 10);

		if (!errno && !*end) {
			json_u64(j, p->name, n);
			return;
		}
	}
	json_str(j, p->name, v, sizeof(p->value));
}

static void status_json(const struct status *s)
{
	struct json j;
	char buf[64], fb[16];
	unsigned int i;

	json_init(&j, stdout);
	json_obj(&j, NULL);
	json_obj(&j, "module");
	if (s->loaded < 0)
		json_null(&j, "loaded");
	else
		json_bool(&j, "loaded", s->loaded == 1);
	if (s->has_initstate)
		json_str(&j, "initstate", s->initstate, sizeof(s->initstate));
	else
		json_null(&j, "initstate");
	if (s->has_refcnt)
		json_u64(&j, "refcnt", strtoull(s->refcnt, NULL, 10));
	else
		json_null(&j, "refcnt");
	if (s->has_version)
		json_str(&j, "version", s->version, sizeof(s->version));
	else
		json_null(&j, "version");
	if (s->has_srcversion)
		json_str(&j, "srcversion", s->srcversion, sizeof(s->srcversion));
	else
		json_null(&j, "srcversion");
	if (s->path[0])
		json_str(&j, "path", s->path, sizeof(s->path));
	else
		json_null(&j, "path");
	json_str(&j, "kernel", s->kernel, sizeof(s->kernel));
	json_end_obj(&j);

	if (s->node) {
		json_obj(&j, "node");
		json_str(&j, "path", NODE, sizeof(NODE));
		json_str(&j, "type", S_ISCHR(s->node_st.st_mode) ? "char" :
			 S_ISBLK(s->node_st.st_mode) ? "block" : "other", 8);
		json_u64(&j, "major", major(s->node_st.st_rdev));
		json_u64(&j, "minor", minor(s->node_st.st_rdev));
		snprintf(buf, sizeof(buf), "%04o", s->node_st.st_mode & 07777);
		json_str(&j, "mode", buf, sizeof(buf));
		json_u64(&j, "uid", s->node_st.st_uid);
		json_str(&j, "user", user_name(s->node_st.st_uid, buf, sizeof(buf)),
			 sizeof(buf));
		json_u64(&j, "gid", s->node_st.st_gid);
		json_str(&j, "group", group_name(s->node_st.st_gid, buf,
						 sizeof(buf)), sizeof(buf));
		json_bool(&j, "access", s->node_access);
		json_end_obj(&j);
	} else {
		json_null(&j, "node");
	}

	if (s->api || s->api_errno == EPROTONOSUPPORT) {
		json_obj(&j, "api");
		json_u64(&j, "major", s->ver.api_major);
		json_u64(&j, "minor", s->ver.api_minor);
		json_u64(&j, "features_mask", s->ver.features);
		json_arr(&j, "features");
		for (i = 0; i < 64; i++)
			if (s->ver.features & (1ULL << i))
				json_str(&j, NULL, feat_name(i, fb, sizeof(fb)),
					 sizeof(fb));
		json_end_arr(&j);
		json_end_obj(&j);
		json_obj(&j, "limits");
		json_u64(&j, "max_devices", s->ver.max_devices);
		json_u64(&j, "max_queue_depth", s->ver.max_queue_depth);
		json_u64(&j, "name_max", s->ver.name_max);
		json_u64(&j, "max_sets_per_user", s->ver.max_sets_per_user);
		json_u64(&j, "max_area_size", s->ver.max_area_size);
		json_end_obj(&j);
	} else {
		json_null(&j, "api");
		json_null(&j, "limits");
	}
	if (s->api_errno)
		json_str(&j, "api_error", strerror(s->api_errno), 128);

	if (s->loaded == 1) {
		json_obj(&j, "parameters");
		for (i = 0; i < s->nparams; i++)
			param_json(&j, &s->params[i]);
		json_end_obj(&j);
	} else {
		json_null(&j, "parameters");
	}
	json_end_obj(&j);
	json_done(&j);
}

int cmd_status(bool json)
{
	struct status *s = calloc(1, sizeof(*s));

	if (!s) {
		msg("out of memory");
		return EXIT_FAIL;
	}
	gather(s);
	if (json)
		status_json(s);
	else
		status_text(s);
	json = s->loaded == 0;
	free(s);
	if (fflush(stdout) || ferror(stdout)) {
		msg("writing the status: %s", strerror(errno));
		return EXIT_FAIL;
	}
	return json ? EXIT_NOT_LOADED : 0;
}

/* ------------------------------------------------------------ load */
/* Wait for /dev/vdi to be a character device: true if it is. */
static bool wait_node(void)
{
	struct timespec pause = { 0, 20 * 1000 * 1000 };
	struct stat sb;
	int i;

	for (i = 0; i <= LOAD_WAIT_S * 50; i++) {
		if (!stat(NODE, &sb) && S_ISCHR(sb.st_mode))
			return true;
		nanosleep(&pause, NULL);
	}
	return false;
}

static const char *load_hint(int err)
{
	switch (err) {
	case EPERM:
		return ": loading a module needs root (CAP_SYS_MODULE)";
	case ENOKEY:
	case EKEYREJECTED:
		return ": the kernel wants signed modules (Secure Boot): sign it "
		       "with the key DKMS enrolled";
	case ENOEXEC:
		return ": not a module for this kernel (rebuild it: DKMS)";
	}
	return "";
}

int cmd_load(void)
{
	struct kmod_module *mod = NULL;
	char path[512] = "";
	struct kmod_ctx *ctx;
	struct utsname u;
	const char *p;
	int ret;

	if (module_loaded() == 1) {
		printf("the vdi module is already loaded\n");
	} else {
		ctx = kmod_new(NULL, NULL);
		if (!ctx) {
			msg("libkmod could not start");
			return EXIT_FAIL;
		}
		/* its messages would only repeat ours */
		kmod_set_log_priority(ctx, 0);
		ret = kmod_module_new_from_name(ctx, "vdi", &mod);
		p = ret ? NULL : kmod_module_get_path(mod);
		if (p)
			snprintf(path, sizeof(path), "%s", p);
		if (!ret && p)
			ret = kmod_module_probe_insert_module(mod, 0, NULL, NULL,
							      NULL, NULL);
		if (mod)
			kmod_module_unref(mod);
		kmod_unref(ctx);
		if (!ret && !path[0]) {
			msg("module vdi is not installed for kernel %s (see "
			    "README: make dkms-install)",
			    uname(&u) ? "?" : u.release);
			return EXIT_FAIL;
		}
		if (ret < 0) {
			msg("loading module vdi (%s) failed: %s%s", path,
			    strerror(-ret), load_hint(-ret));
			return EXIT_FAIL;
		}
		printf("loaded module vdi (%s)\n", path);
	}
	if (!wait_node()) {
		msg("%s did not appear within %d s although the module is "
		    "loaded (is devtmpfs mounted, udev running?)", NODE,
		    LOAD_WAIT_S);
		return EXIT_FAIL;
	}
	printf("%s is there\n", NODE);
	return 0;
}
