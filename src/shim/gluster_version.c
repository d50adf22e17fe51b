/* Which GlusterFS glupy.so was built for, and the calls whose form differs
 * between GlusterFS 10 and 11, so Rust sees one API.
 *
 * A glupy.so built for one GlusterFS version must never run in another:
 * xlator_api_t and xlator_t have other layouts (11 dropped
 * xlator_api_t.flags and .xlator_id, so every later field moved). GlusterFS
 * dlopens the .so and then reads xlator_api, fops first. The constructor
 * below runs inside that dlopen, before anything is read: if the GlusterFS
 * that loads it is not the one it was built for, it logs one line and
 * zeroes xlator_api, so GlusterFS, whatever layout it reads it with, finds
 * no fops table and refuses the translator ("struct missing"). init checks
 * the same verdict (glupy_version_refusal).
 *
 * For the constructor to get that far, a build may reference symbols that
 * only its own version exports only weakly (below): an unresolved strong
 * symbol would fail the dlopen first, with a less helpful message. */
#include <dlfcn.h>
#include <string.h>

#include "glupy_shim.h"

#if !defined(GLUPY_GLUSTERFS_VERSION) || !defined(GLUPY_GLUSTERFS_MAJOR)
#error "build.rs defines GLUPY_GLUSTERFS_VERSION and GLUPY_GLUSTERFS_MAJOR"
#endif

/* Defined by the Rust host (src/api.rs); writable (a static mut). */
extern xlator_api_t xlator_api;

static char refusal[512];

/* Tells anyone holding a glupy.so which GlusterFS it is for
 * (`strings glupy.so | grep glupy-built-for-glusterfs`). */
#define BUILT_FOR_PREFIX "glupy-built-for-glusterfs="
static const char built_for[] = BUILT_FOR_PREFIX GLUPY_GLUSTERFS_VERSION;
/* Read through here, so the linker keeps the string in the .so. */
static const char *const volatile version = built_for + strlen(BUILT_FOR_PREFIX);

/* The version in a path ".../glusterfs/<version>/xlator/...": GlusterFS
 * loads translators only from XLATORDIR, which its build makes of
 * PACKAGE_VERSION (libdir/glusterfs/PACKAGE_VERSION/xlator). */
static int
version_from_path(const char *path, char *out, size_t size)
{
    const char *p = path;

    while ((p = strstr(p, "/glusterfs/")) != NULL) {
        const char *start = p + strlen("/glusterfs/");
        const char *end = strchr(start, '/');

        p = start;
        if (!end || end == start || (size_t)(end - start) >= size ||
            strncmp(end, "/xlator/", strlen("/xlator/")) != 0)
            continue;
        memcpy(out, start, end - start);
        out[end - start] = '\0';
        return 1;
    }
    return 0;
}

/* 10.x (and older) export dict_set_bin; 11.x made it a static inline
 * wrapper of dict_setn_bin. Asked of the libglusterfs in the process, so it
 * holds for any host (glusterfsd, glusterd, a gfapi application). */
static int
running_is_gluster11(int *known)
{
    void *lib = dlopen("libglusterfs.so.0", RTLD_LAZY | RTLD_NOLOAD);
    int eleven;

    *known = lib != NULL;
    if (!lib)
        return 0;
    eleven = dlsym(lib, "dict_set_bin") == NULL;
    dlclose(lib);
    return eleven;
}

__attribute__((constructor)) static void
glupy_check_gluster_version(void)
{
    char running[64] = "";
    int known = 0;
    int eleven = running_is_gluster11(&known);
    int built_eleven = GLUPY_GLUSTERFS_MAJOR >= 11;
    Dl_info self;
    int path_differs, library_differs;

    if (dladdr((void *)&xlator_api, &self) && self.dli_fname)
        version_from_path(self.dli_fname, running, sizeof(running));
    path_differs = running[0] && strcmp(running, version) != 0;
    library_differs = known && eleven != built_eleven;
    if (!path_differs && !library_differs)
        return;
    if (!path_differs)
        snprintf(running, sizeof(running), "%s",
                 eleven ? "11.x" : "10.x or older");
    snprintf(refusal, sizeof(refusal),
             "glupy.so was built for GlusterFS %s but is loaded by GlusterFS "
             "%s: not loaded; install the glupy built for GlusterFS %s "
             "(or build it from source against libglusterfs-dev %s)",
             version, running, running, running);
    /* Whatever layout GlusterFS reads it with, fops is NULL now. */
    memset(&xlator_api, 0, sizeof(xlator_api));
    _gf_msg("glupy", __FILE__, __FUNCTION__, __LINE__, GF_LOG_ERROR, 0, 0, 0,
            "%s", refusal);
}

const char *
glupy_version_refusal(void)
{
    return refusal[0] ? refusal : NULL;
}

const char *
glupy_gluster_version(void)
{
    return version;
}

/* ---- calls whose form differs between 10 and 11 ---- */

#if GLUPY_GLUSTERFS_MAJOR >= 11
#pragma weak dict_setn_bin
#else
#pragma weak dict_set_bin
#endif

int
glupy_dict_set_bin(dict_t *dict, char *key, void *ptr, size_t size)
{
    return dict_set_bin(dict, key, ptr, size);
}

gf_boolean_t
glupy_dict_del(dict_t *dict, char *key)
{
    return dict_deln(dict, key, strlen(key));
}

/* 11 returns the value (0 when there is none) instead of filling *value. */
int
glupy_fd_ctx_get(fd_t *fd, xlator_t *xl, uint64_t *value)
{
#if GLUPY_GLUSTERFS_MAJOR >= 11
    *value = fd_ctx_get(fd, xl);
    return *value ? 0 : -1;
#else
    return fd_ctx_get(fd, xl, value);
#endif
}

int
glupy_fd_ctx_del(fd_t *fd, xlator_t *xl, uint64_t *value)
{
#if GLUPY_GLUSTERFS_MAJOR >= 11
    *value = fd_ctx_del(fd, xl);
    return *value ? 0 : -1;
#else
    return fd_ctx_del(fd, xl, value);
#endif
}
