/* Hand-written helpers; the per-fop code is generated into fops_gen.c by
 * build.rs from src/fops.table and included at the end. */
#include "glupy_shim.h"

static glupy_fop_hook_t fop_hook;
static glupy_cbk_hook_t cbk_hook;
static glupy_notify_hook_t notify_hook;

void
glupy_set_hooks(glupy_fop_hook_t fop, glupy_cbk_hook_t cbk,
                glupy_notify_hook_t notify)
{
    fop_hook = fop;
    cbk_hook = cbk;
    notify_hook = notify;
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
