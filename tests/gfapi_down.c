/*
 * gfapi_down: a getxattr (user.gil.hold: the client-side translator starts
 * a Python thread that holds the GIL until the test writes to its FIFO),
 * then, once a line arrives on stdin, glfs_fini. tests/test_lifecycle.py
 * compiles and runs it.
 *
 *   gfapi_down VOLFILE LOGFILE
 *
 * Not Python on purpose: a client-side glupy layer embeds CPython in this
 * process (see gfapi_cycles.c).
 */
#include <errno.h>
#include <glusterfs/api/glfs.h>
#include <stdio.h>
#include <string.h>

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s VOLFILE LOGFILE\n", argv[0]);
        return 2;
    }
    glfs_t *fs = glfs_new("down");
    if (!fs || glfs_set_volfile(fs, argv[1]) || glfs_set_logging(fs, argv[2], 7)) {
        printf("setup failed\n");
        return 1;
    }
    if (glfs_init(fs) != 0) {
        printf("glfs_init failed: %s\n", strerror(errno));
        return 1;
    }
    char value[64] = {0};
    ssize_t got = glfs_getxattr(fs, "/", "user.gil.hold", value, sizeof value - 1);
    printf("getxattr %zd %s\n", got, got < 0 ? strerror(errno) : "");
    fflush(stdout);
    char go[16];
    if (!fgets(go, sizeof go, stdin))
        printf("no go\n");
    int ret = glfs_fini(fs);
    printf("fini returned %d\n", ret);
    fflush(stdout);
    return 0;
}
