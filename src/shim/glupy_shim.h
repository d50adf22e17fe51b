/* The C side of glupy: the parts of GlusterFS's API that are macros or
 * static inline functions (STACK_WIND, STACK_UNWIND_STRICT, list handling),
 * compiled against the installed headers so they stay right for the
 * installed version. The per-fop functions are generated from fops.table. */
#ifndef GLUPY_SHIM_H
#define GLUPY_SHIM_H

#include <glusterfs/glusterfs.h>
#include <glusterfs/xlator.h>
#include <glusterfs/defaults.h>
#include <glusterfs/stack.h>
#include <glusterfs/dict.h>
#include <glusterfs/iobuf.h>
#include <glusterfs/gf-dirent.h>
#include <glusterfs/statedump.h>
#include <glusterfs/logging.h>
#include <glusterfs/mem-types.h>
#include <glusterfs/upcall-utils.h>

/* One argument of a fop or callback: pointers in p, every scalar widened
 * to 64 bits in i, so Rust needs no per-type sizes. */
typedef union {
    void *p;
    int64_t i;
} glupy_slot_t;

typedef void (*glupy_fop_hook_t)(int fop, call_frame_t *frame, xlator_t *this,
                                 const glupy_slot_t *args);
typedef void (*glupy_cbk_hook_t)(int fop, call_frame_t *frame, void *cookie,
                                 xlator_t *this, int32_t op_ret,
                                 int32_t op_errno, const glupy_slot_t *args);

typedef void (*glupy_notify_hook_t)(xlator_t *this, int32_t event,
                                    void *data);

/* The text that answers the status key for a translator: a gf_strdup'ed
 * string the caller owns, or NULL (no live instance). Never calls Python. */
typedef char *(*glupy_status_hook_t)(xlator_t *this);

/* Set once by the host before any fop can arrive. */
void glupy_set_hooks(glupy_fop_hook_t fop, glupy_cbk_hook_t cbk,
                     glupy_notify_hook_t notify, glupy_status_hook_t status);

/* The reserved getxattr key every glupy translator answers itself, in its
 * fop entry, without Python (`glupy status` reads it from each brick). */
#define GLUPY_STATUS_KEY "trusted.glupy.status"

/* A client process's registration on the volume's root (the name is this
 * prefix, then host, pid and translator), so that `glupy status` on any
 * server sees what it runs (src/announce.rs). */
#define GLUPY_CLIENT_KEY_PREFIX "trusted.glupy.client."

/* Whether `name` asks the status key: GLUPY_STATUS_KEY itself, or it and a
 * suffix after a dot (a query's nonce, which no stored xattr can answer). */
int glupy_is_status_key(const char *name);

/* One call on the volume's root through this translator's first child,
 * after a lookup of it, each with a frame of its own (syncop: the calling
 * thread waits; never call it on an event thread): GLUPY_ROOT_LIST gets
 * every xattr into *all (a reference the caller unrefs), GLUPY_ROOT_SET sets
 * `key` to `value`, GLUPY_ROOT_REMOVE removes `key`. `proceed(arg)` is asked
 * before each call goes down: 0 stops there (-ECANCELED). 0, or -errno;
 * -EAGAIN while the graph has no inode table at its top yet (fuse makes it
 * when CHILD_UP reaches it, after this translator). */
typedef int (*glupy_proceed_t)(void *arg);
enum { GLUPY_ROOT_LIST = 0, GLUPY_ROOT_SET = 1, GLUPY_ROOT_REMOVE = 2 };
int glupy_root_xattr(xlator_t *this, int op, const char *key,
                     const char *value, dict_t **all, glupy_proceed_t proceed,
                     void *arg);

/* Who this process is, borrowed from GlusterFS's context (NULL if unset):
 * the volfile server, the mount point, the process name; and whether it
 * registers: a client process (a mount or a gfapi application, not a brick)
 * that is not one of GlusterFS's internal clients (a negative client pid:
 * self-heal, glfsheal, geo-replication or quota's auxiliary mounts). */
const char *glupy_volfile_server(xlator_t *this);
const char *glupy_mount_point(xlator_t *this);
const char *glupy_process_name(xlator_t *this);
int glupy_registers(xlator_t *this);

/* The op_ret a successful xattr answer (getxattr, fgetxattr, xattrop,
 * fxattrop) given with `op_ret` goes up with: as given on a brick (posix
 * answers a getxattr with the value's size); 0 in a client process, as
 * protocol/client sends a success up (gfapi's glfs_getxattr reads any other
 * op_ret as a failure and copies nothing). The one place that decides it,
 * for Python's answers and the status key's alike. */
int32_t glupy_xattr_success_op_ret(xlator_t *this, int32_t op_ret);

/* Whether this translator's graph is the process's active one: a new
 * volfile makes another graph active at once, while fuse switches to it
 * only at its next request (an idle mount keeps the old one). */
int glupy_graph_active(xlator_t *this);

/* Points the getxattr slot at the entry that answers GLUPY_STATUS_KEY and
 * hands every other name on: to the glupy entry (python != 0: the module
 * has getxattr in Python) or straight to default_getxattr, as before. */
void glupy_fill_status(struct xlator_fops *table, int python);

/* The variadic notify entry (Rust cannot define C variadics): tells the
 * host, then forwards to default_notify so the graph comes up. */
int32_t glupy_notify(xlator_t *this, int32_t event, void *data, ...);

/* Points the slots of intercepted fops at the glupy entries; the others
 * keep what fill_defaults put there (GlusterFS's pass-through default). */
void glupy_fill_fops(struct xlator_fops *table, const uint8_t *intercept);

/* Winds fop to child; the reply comes back through the cbk hook with
 * cookie. */
void glupy_wind(int fop, call_frame_t *frame, xlator_t *child, void *cookie,
                const glupy_slot_t *args);

/* Answers frame. Puts back first what frame->local held when the frame
 * reached glupy (NULL, or a tail-winding parent's local, which
 * FRAME_DESTROY then frees as that parent expects): glupy's own state
 * must not be mem_put. */
void glupy_unwind(int fop, call_frame_t *frame, int32_t op_ret,
                  int32_t op_errno, const glupy_slot_t *args,
                  void *parent_local);

int glupy_fop_count(void);

/* Helpers for what GlusterFS has only as macros or inline functions. */
xlator_t *glupy_first_child(xlator_t *this);
xlator_t **glupy_this_location(void);
void glupy_dirents_init(gf_dirent_t *head);
void glupy_dirents_append(gf_dirent_t *head, gf_dirent_t *entry);
gf_dirent_t *glupy_dirents_next(gf_dirent_t *head, gf_dirent_t *cur);
/* The lock list of getactivelk/setactivelk (a list head of entries). */
void glupy_locklist_init(lock_migration_info_t *head);
void glupy_locklist_append(lock_migration_info_t *head,
                           lock_migration_info_t *entry);
lock_migration_info_t *glupy_locklist_next(lock_migration_info_t *head,
                                           lock_migration_info_t *cur);
void glupy_log(const char *domain, const char *file, const char *function,
               int line, int level, const char *message);
struct iobuf_pool *glupy_iobuf_pool(xlator_t *this);
void *glupy_iobuf_ptr(struct iobuf *iob);
int glupy_mem_acct_init(xlator_t *this);
void glupy_dump_section(const char *name);
void glupy_dump_write(const char *key, const char *value);
void *glupy_calloc(size_t n);
char *glupy_strdup(const char *s);
void glupy_free(void *p);
/* st_mode of an iatt (type and permission bits), and back. */
uint32_t glupy_iatt_mode(const struct iatt *buf);
void glupy_iatt_set_mode(struct iatt *buf, uint32_t mode);
/* Per-frame identity for Glupy 1 compatibility: root->unique and pid/uid. */
uint64_t glupy_frame_unique(call_frame_t *frame);
int32_t glupy_frame_pid(call_frame_t *frame);
uint32_t glupy_frame_uid(call_frame_t *frame);
uint32_t glupy_frame_gid(call_frame_t *frame);

/* src/shim/gluster_version.c: the GlusterFS version this build is for, the
 * load-time verdict (NULL, or why this GlusterFS is refused), and the calls
 * whose form differs between GlusterFS 10 and 11. */
const char *glupy_gluster_version(void);
const char *glupy_version_refusal(void);
int glupy_dict_set_bin(dict_t *dict, char *key, void *ptr, size_t size);
gf_boolean_t glupy_dict_del(dict_t *dict, char *key);
int glupy_fd_ctx_get(fd_t *fd, xlator_t *xl, uint64_t *value);
int glupy_fd_ctx_del(fd_t *fd, xlator_t *xl, uint64_t *value);

#endif
