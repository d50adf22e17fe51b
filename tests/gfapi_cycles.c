/*
 * gfapi_cycles: glfs_init / glfs_fini of one client volfile, several times
 * in one process (tests/test_lifecycle.py compiles and runs it, with a
 * client-side glupy translator in the volfile).
 *
 *   gfapi_cycles VOLFILE LOGFILE ROUNDS KEEP_ROUNDS
 *
 * Each round: glfs_init, create /cycleN, write, read back, a getxattr the
 * translator keeps for a while before answering; in the first KEEP_ROUNDS
 * rounds also an ftruncate and an fsync issued asynchronously that the
 * translator never answers (the end of the graph must); then glfs_fini.
 * After the last round it waits 2 s (the translator's threads use the
 * values they kept) and exits normally. One line per event on stdout.
 *
 * Not Python on purpose: a client-side glupy layer embeds CPython in this
 * process, which a Python driver (with its own libpython) cannot host.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <glusterfs/api/glfs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
io_done(glfs_fd_t *fd, ssize_t ret, struct glfs_stat *pre, struct glfs_stat *post,
        void *data)
{
    (void)fd;
    (void)pre;
    (void)post;
    printf("%s answered ret=%zd errno=%d\n", (const char *)data, ret,
           ret < 0 ? errno : 0);
    fflush(stdout);
}

static int
round_trip(const char *volfile, const char *logfile, int round, int keep)
{
    glfs_t *fs = glfs_new("cycles");
    if (!fs || glfs_set_volfile(fs, volfile) || glfs_set_logging(fs, logfile, 7)) {
        printf("round %d: setup failed\n", round);
        return 1;
    }
    if (glfs_init(fs) != 0) {
        printf("round %d: glfs_init failed: %s\n", round, strerror(errno));
        return 1;
    }
    printf("round %d: init\n", round);
    char path[64], data[] = "hello, cycles", back[64] = {0}, value[64] = {0};
    snprintf(path, sizeof path, "/cycle%d", round);
    glfs_fd_t *fd = glfs_creat(fs, path, O_RDWR, 0644);
    if (!fd) {
        printf("round %d: create failed: %s\n", round, strerror(errno));
        return 1;
    }
    ssize_t wrote = glfs_pwrite(fd, data, sizeof data, 0, 0, NULL, NULL);
    ssize_t got = glfs_pread(fd, back, sizeof data, 0, 0, NULL);
    printf("round %d: wrote %zd read %zd %s\n", round, wrote, got,
           got == (ssize_t)sizeof data && !memcmp(back, data, sizeof data) ? "same" : "DIFFERENT");
    ssize_t n = glfs_getxattr(fs, path, "user.lc.keep", value, sizeof value - 1);
    printf("round %d: kept getxattr %zd %s\n", round, n, n > 0 ? value : strerror(errno));
    if (round <= keep) {
        if (glfs_ftruncate_async(fd, 1, io_done, "ftruncate") != 0 ||
            glfs_fsync_async(fd, io_done, "fsync") != 0)
            printf("round %d: async call failed: %s\n", round, strerror(errno));
    } else {
        glfs_close(fd);
    }
    fflush(stdout);
    int rc = glfs_fini(fs);
    printf("round %d: fini %d\n", round, rc);
    fflush(stdout);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s VOLFILE LOGFILE ROUNDS KEEP_ROUNDS\n", argv[0]);
        return 2;
    }
    int rounds = atoi(argv[3]), keep = atoi(argv[4]);
    for (int round = 1; round <= rounds; round++)
        if (round_trip(argv[1], argv[2], round, keep))
            return 1;
    sleep(2);
    printf("done\n");
    return 0;
}
