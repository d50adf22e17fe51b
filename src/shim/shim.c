/* Hand-written helpers; the per-fop code is generated into fops_gen.c by
 * build.rs from src/fops.table and included at the end. */
#include "glupy_shim.h"
#include <glusterfs/syncop.h>

static glupy_fop_hook_t fop_hook;
static glupy_cbk_hook_t cbk_hook;
static glupy_notify_hook_t notify_hook;
static glupy_status_hook_t status_hook;

void
glupy_set_hooks(glupy_fop_hook_t fop, glupy_cbk_hook_t cbk,
                glupy_notify_hook_t notify, glupy_status_hook_t status)
{
    fop_hook = fop;
    cbk_hook = cbk;
    notify_hook = notify;
    status_hook = status;
}

int32_t
glupy_notify(xlator_t *this, int32_t event, void *data, ...)
{
    if (notify_hook)
        notify_hook(this, event, data);
    return default_notify(this, event, data);
}

xlator_t *
glupy_first_child(xlator_t *this)
{
    return this->children ? this->children->xlator : NULL;
}

xlator_t **
glupy_this_location(void)
{
    return __glusterfs_this_location();
}

void
glupy_dirents_init(gf_dirent_t *head)
{
    INIT_LIST_HEAD(&head->list);
}

void
glupy_dirents_append(gf_dirent_t *head, gf_dirent_t *entry)
{
    list_add_tail(&entry->list, &head->list);
}

gf_dirent_t *
glupy_dirents_next(gf_dirent_t *head, gf_dirent_t *cur)
{
    gf_dirent_t *next = cur ? cur->next : head->next;
    return next == head ? NULL : next;
}

void
glupy_log(const char *domain, const char *file, const char *function,
          int line, int level, const char *message)
{
    _gf_msg(domain, file, function, line, (gf_loglevel_t)level, 0, 0, 0, "%s",
            message);
}

void
glupy_locklist_init(lock_migration_info_t *head)
{
    INIT_LIST_HEAD(&head->list);
}

void
glupy_locklist_append(lock_migration_info_t *head, lock_migration_info_t *entry)
{
    list_add_tail(&entry->list, &head->list);
}

lock_migration_info_t *
glupy_locklist_next(lock_migration_info_t *head, lock_migration_info_t *cur)
{
    struct list_head *next = cur ? cur->list.next : head->list.next;
    return next == &head->list ? NULL
                               : list_entry(next, lock_migration_info_t, list);
}

struct iobuf_pool *
glupy_iobuf_pool(xlator_t *this)
{
    return this->ctx->iobuf_pool;
}

void *
glupy_iobuf_ptr(struct iobuf *iob)
{
    return iobuf_ptr(iob);
}

int
glupy_mem_acct_init(xlator_t *this)
{
    return xlator_mem_acct_init(this, gf_common_mt_end + 1);
}

void
glupy_dump_section(const char *name)
{
    gf_proc_dump_add_section("%s", name);
}

void
glupy_dump_write(const char *key, const char *value)
{
    gf_proc_dump_write((char *)key, "%s", value);
}

void *
glupy_calloc(size_t n)
{
    return GF_CALLOC(1, n, gf_common_mt_char);
}

char *
glupy_strdup(const char *s)
{
    return gf_strdup(s);
}

void
glupy_free(void *p)
{
    GF_FREE(p);
}

uint32_t
glupy_iatt_mode(const struct iatt *buf)
{
    return st_mode_from_ia(buf->ia_prot, buf->ia_type);
}

void
glupy_iatt_set_mode(struct iatt *buf, uint32_t mode)
{
    buf->ia_prot = ia_prot_from_st_mode(mode);
    buf->ia_type = ia_type_from_st_mode(mode);
}

uint64_t
glupy_frame_unique(call_frame_t *frame)
{
    return frame->root->unique;
}

int32_t
glupy_frame_pid(call_frame_t *frame)
{
    return frame->root->pid;
}

uint32_t
glupy_frame_uid(call_frame_t *frame)
{
    return frame->root->uid;
}

uint32_t
glupy_frame_gid(call_frame_t *frame)
{
    return frame->root->gid;
}

#include "fops_gen.c"

/* The status key (GLUPY_STATUS_KEY). Answered here, in the fop entry, once
 * on every path: the frame never reaches the Rust fop hook, Python or the
 * child. The hook only reads the translator's instance and returns its text
 * (guarded: a panic there is NULL). `name` (the key, or the key and a
 * query's nonce) is read only before the answer is sent. */
int
glupy_is_status_key(const char *name)
{
    size_t len = sizeof(GLUPY_STATUS_KEY) - 1;
    return name && strncmp(name, GLUPY_STATUS_KEY, len) == 0 &&
           (name[len] == '\0' || name[len] == '.');
}

static int32_t
glupy_status_answer(call_frame_t *frame, xlator_t *this, const char *name)
{
    char *text = status_hook ? status_hook(this) : NULL;
    dict_t *dict = NULL;
    int32_t op_ret = -1;
    int32_t op_errno = EIO;

    if (text) {
        op_errno = ENOMEM;
        dict = dict_new();
        if (dict) {
            int32_t len = (int32_t)strlen(text) + 1;
            /* The dict copies name and text: the value is found under
             * the name asked for. */
            if (dict_set_dynstr_with_alloc(dict, (char *)name, text) == 0) {
                op_ret = glupy_xattr_success_op_ret(this, len);
                op_errno = 0;
            }
        }
        GF_FREE(text);
    }
    STACK_UNWIND_STRICT(getxattr, frame, op_ret, op_errno,
                        op_ret < 0 ? NULL : dict, NULL);
    if (dict)
        dict_unref(dict);
    return 0;
}

static int32_t
glupy_getxattr_status_default(call_frame_t *frame, xlator_t *this, loc_t *loc,
                              const char *name, dict_t *xdata)
{
    if (glupy_is_status_key(name))
        return glupy_status_answer(frame, this, name);
    return default_getxattr(frame, this, loc, name, xdata);
}

static int32_t
glupy_getxattr_status_python(call_frame_t *frame, xlator_t *this, loc_t *loc,
                             const char *name, dict_t *xdata)
{
    if (glupy_is_status_key(name))
        return glupy_status_answer(frame, this, name);
    return glupy_fop_getxattr(frame, this, loc, name, xdata);
}

void
glupy_fill_status(struct xlator_fops *t, int python)
{
    t->getxattr = python ? glupy_getxattr_status_python
                         : glupy_getxattr_status_default;
}

/* See glupy_shim.h. The frames are syncop's own (euid and pid of this
 * process); the root inode is the one the mount's own table holds (a
 * reference is taken for the call), looked up first so that the cluster
 * translators below (DHT's layout) know it, as fuse's and gfapi's first
 * lookup does. `proceed` is asked before each call goes down. */
int
glupy_root_xattr(xlator_t *this, int op, const char *key, const char *value,
                 dict_t **all, glupy_proceed_t proceed, void *arg)
{
    xlator_t *top = this->graph ? (xlator_t *)this->graph->top : NULL;
    inode_table_t *itable = top ? top->itable : NULL;
    xlator_t *child = glupy_first_child(this);
    xlator_t *old_this = THIS;
    loc_t loc = {
        0,
    };
    struct iatt iatt = {
        0,
    };
    dict_t *dict = NULL;
    int ret = -ECANCELED;

    if (!itable || !itable->root || !child)
        return -EAGAIN;
    if (!proceed(arg))
        return -ECANCELED;
    THIS = this;
    loc.inode = inode_ref(itable->root);
    memcpy(loc.gfid, loc.inode->gfid, sizeof(loc.gfid));
    loc.path = gf_strdup("/");
    if (!loc.path) {
        ret = -ENOMEM;
        goto out;
    }
    ret = syncop_lookup(child, &loc, &iatt, NULL, NULL, NULL);
    if (ret < 0)
        goto out;
    ret = -ECANCELED;
    if (!proceed(arg))
        goto out;
    switch (op) {
        case GLUPY_ROOT_LIST:
            ret = syncop_getxattr(child, &loc, all, NULL, NULL, NULL);
            break;
        case GLUPY_ROOT_SET:
            ret = -ENOMEM;
            dict = dict_new();
            if (!dict ||
                dict_set_dynstr_with_alloc(dict, (char *)key, value) != 0)
                goto out;
            ret = syncop_setxattr(child, &loc, dict, 0, NULL, NULL);
            break;
        case GLUPY_ROOT_REMOVE:
            ret = syncop_removexattr(child, &loc, key, NULL, NULL);
            break;
        default:
            ret = -EINVAL;
    }
out:
    if (dict)
        dict_unref(dict);
    loc_wipe(&loc);
    THIS = old_this;
    return ret < 0 ? ret : 0;
}

const char *
glupy_volfile_server(xlator_t *this)
{
    return this->ctx->cmd_args.volfile_server;
}

const char *
glupy_mount_point(xlator_t *this)
{
    return this->ctx->cmd_args.mount_point;
}

const char *
glupy_process_name(xlator_t *this)
{
    return this->ctx->cmd_args.process_name;
}

int32_t
glupy_xattr_success_op_ret(xlator_t *this, int32_t op_ret)
{
    return this->ctx->process_mode == GF_CLIENT_PROCESS ? 0 : op_ret;
}

int
glupy_graph_active(xlator_t *this)
{
    return this->graph && this->ctx->active == this->graph;
}

int
glupy_registers(xlator_t *this)
{
    cmd_args_t *args = &this->ctx->cmd_args;
    return this->ctx->process_mode == GF_CLIENT_PROCESS &&
           !(args->client_pid_set && args->client_pid < 0);
}
