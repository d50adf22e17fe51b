/*
 * gfapi_two_graphs: two volumes (two graphs) in one gfapi process, both
 * with a client-side glupy layer of tests/xlators/cross_graph.py, which
 * shares what one graph's translator kept with the other's. Creates /f,
 * then sends the getxattrs named on the command line, each to volume
 * "a" or "b", and prints each answer. tests/test_lifecycle.py compiles
 * and runs it.
 *
 *   gfapi_two_graphs VOLFILE_A VOLFILE_B LOGFILE a:NAME b:NAME ...
 *
 * Not Python on purpose: a client-side glupy layer embeds CPython in this
 * process (see gfapi_cycles.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <glusterfs/api/glfs.h>
#include <stdio.h>
#include <string.h>

static glfs_t *
open_volume(const char *name, const char *volfile, const char *log)
{
    glfs_t *fs = glfs_new(name);
    if (!fs || glfs_set_volfile(fs, volfile) || glfs_set_logging(fs, log, 7) ||
        glfs_init(fs) != 0) {
        printf("volume %s: setup failed: %s\n", name, strerror(errno));
        return NULL;
    }
    return fs;
}

int
main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s VOLFILE_A VOLFILE_B LOGFILE a:NAME ...\n", argv[0]);
        return 2;
    }
    glfs_t *a = open_volume("a", argv[1], argv[3]);
    glfs_t *b = open_volume("b", argv[2], argv[3]);
    if (!a || !b)
        return 1;
    glfs_fd_t *fd = glfs_creat(a, "/f", O_RDWR, 0644);
    if (!fd) {
        printf("creat failed: %s\n", strerror(errno));
        return 1;
    }
    glfs_close(fd);
    for (int i = 4; i < argc; i++) {
        glfs_t *fs = argv[i][0] == 'a' ? a : b;
        const char *name = argv[i] + 2;
        char value[4096] = {0};
        ssize_t got = glfs_getxattr(fs, "/f", name, value, sizeof value - 1);
        printf("%c %s %zd %s\n", argv[i][0], name, got, got < 0 ? strerror(errno) : value);
        fflush(stdout);
    }
    glfs_fini(b);
    glfs_fini(a);
    printf("done\n");
    return 0;
}
