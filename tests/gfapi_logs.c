/*
 * gfapi_logs: a gfapi application with one glfs instance per
 * "VOLFILE LOGFILE" pair, each logging to its own file (glfs_set_logging),
 * as Samba, NFS-Ganesha or QEMU do. After every instance is up, it stats
 * each PATH given after "--" on every instance, in order, and prints
 * "stat <instance> <path> <0 or errno name>" per call. It waits
 * --settle seconds (so lines written by other threads land), then exits with
 * _exit: glfs_fini takes ~10 s in 10.3 and is not what is tested.
 *
 *   gfapi_logs [--settle S] VOL1 LOG1 [VOL2 LOG2 ...] -- PATH...
 *
 * Built by tests/test_threads_logs.py with: gcc -o gfapi_logs gfapi_logs.c -lgfapi
 */
#define _GNU_SOURCE
#include <errno.h>
#include <glusterfs/api/glfs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_INSTANCES 8

int
main(int argc, char **argv)
{
    glfs_t *fs[MAX_INSTANCES];
    int count = 0;
    int i = 1;
    double settle = 0.5;

    if (i + 1 < argc && strcmp(argv[i], "--settle") == 0) {
        settle = atof(argv[i + 1]);
        i += 2;
    }
    for (; i + 1 < argc && strcmp(argv[i], "--") != 0; i += 2) {
        if (count == MAX_INSTANCES) {
            fprintf(stderr, "at most %d instances\n", MAX_INSTANCES);
            return 2;
        }
        glfs_t *one = glfs_new("gfapilogs");
        if (!one || glfs_set_volfile(one, argv[i]) != 0 ||
            glfs_set_logging(one, argv[i + 1], 7 /* GF_LOG_INFO */) != 0) {
            fprintf(stderr, "cannot set up instance %d: %s\n", count,
                    strerror(errno));
            return 2;
        }
        if (glfs_init(one) != 0) {
            fprintf(stderr, "glfs_init of instance %d: %s\n", count,
                    strerror(errno));
            return 2;
        }
        fs[count++] = one;
    }
    if (i >= argc || strcmp(argv[i], "--") != 0 || count == 0) {
        fprintf(stderr, "usage: gfapi_logs [--settle S] VOL LOG [VOL LOG ...] -- PATH...\n");
        return 2;
    }
    for (i++; i < argc; i++) {
        for (int n = 0; n < count; n++) {
            struct stat st;
            int rc = glfs_stat(fs[n], argv[i], &st);
            printf("stat %d %s %s\n", n, argv[i],
                   rc == 0 ? "0" : strerrorname_np(errno));
            fflush(stdout);
        }
    }
    usleep((useconds_t)(settle * 1e6));
    fflush(stdout);
    _exit(0);
}
