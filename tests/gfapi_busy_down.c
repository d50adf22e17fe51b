/*
 * gfapi_busy_down: requests in flight while the graph ends. One line on
 * stdin at a time: "statfs" starts a thread that calls glfs_statvfs,
 * "getxattr NAME" one that calls glfs_getxattr on "/", "fini" calls
 * glfs_fini, "exit" returns. Each result is printed as a line (a
 * getxattr's with its name).
 * tests/test_faults.py compiles and runs it.
 *
 *   gfapi_busy_down VOLFILE LOGFILE
 *
 * Not Python on purpose: a client-side glupy layer embeds CPython in this
 * process (see gfapi_cycles.c).
 */
#include <errno.h>
#include <glusterfs/api/glfs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

static glfs_t *fs;
static pthread_mutex_t out = PTHREAD_MUTEX_INITIALIZER;

static void
say(const char *format, ...)
{
    va_list args;
    pthread_mutex_lock(&out);
    va_start(args, format);
    vprintf(format, args);
    va_end(args);
    fflush(stdout);
    pthread_mutex_unlock(&out);
}

static void *
do_statfs(void *unused)
{
    struct statvfs buf;
    int ret = glfs_statvfs(fs, "/", &buf);
    say("statfs %d %d\n", ret, ret < 0 ? errno : 0);
    return unused;
}

static void *
do_getxattr(void *name)
{
    char value[64] = {0};
    ssize_t got = glfs_getxattr(fs, "/", name, value, sizeof value - 1);
    say("getxattr %s %zd %d\n", (char *)name, got, got < 0 ? errno : 0);
    free(name);
    return NULL;
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s VOLFILE LOGFILE\n", argv[0]);
        return 2;
    }
    fs = glfs_new("busydown");
    if (!fs || glfs_set_volfile(fs, argv[1]) || glfs_set_logging(fs, argv[2], 7)) {
        say("setup failed\n");
        return 1;
    }
    if (glfs_init(fs) != 0) {
        say("glfs_init failed %d\n", errno);
        return 1;
    }
    say("ready\n");
    char line[256];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = '\0';
        pthread_t thread;
        if (strcmp(line, "statfs") == 0) {
            pthread_create(&thread, NULL, do_statfs, NULL);
            pthread_detach(thread);
        } else if (strncmp(line, "getxattr ", 9) == 0) {
            pthread_create(&thread, NULL, do_getxattr, strdup(line + 9));
            pthread_detach(thread);
        } else if (strcmp(line, "fini") == 0) {
            int ret = glfs_fini(fs);
            say("fini %d\n", ret);
        } else if (strcmp(line, "exit") == 0) {
            return 0;
        }
    }
    return 0;
}
