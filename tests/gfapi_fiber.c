/*
 * gfapi_fiber: calls glfs_getxattr from a ucontext fibre with a 64 KiB
 * stack, as applications with coroutines do (QEMU's block layer, Samba's
 * and NFS-Ganesha's fibres): a client-side translator's Python code must
 * still get a large stack. Prints "getxattr <rc> <errno name>".
 *
 *   gfapi_fiber VOLFILE LOGFILE PATH XATTR
 *
 * The fibre's stack is mapped before the thread that runs it starts, so it
 * may lie above that thread's own stack (nothing in a real program orders
 * them). Built by tests/test_threads_logs.py: gcc -o gfapi_fiber gfapi_fiber.c -lgfapi
 */
#define _GNU_SOURCE
#include <errno.h>
#include <glusterfs/api/glfs.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#define FIBRE_STACK (64 << 10)

static glfs_t *fs;
static const char *path, *xattr;
static void *fibre_stack;
static ucontext_t fibre, back;
static ssize_t result;
static int result_errno;

static void
in_fibre(void)
{
    char value[4096];
    result = glfs_getxattr(fs, path, xattr, value, sizeof(value));
    result_errno = result < 0 ? errno : 0;
}

static void *
worker(void *arg)
{
    (void)arg;
    getcontext(&fibre);
    fibre.uc_stack.ss_sp = fibre_stack;
    fibre.uc_stack.ss_size = FIBRE_STACK;
    fibre.uc_link = &back;
    makecontext(&fibre, in_fibre, 0);
    swapcontext(&back, &fibre);
    return NULL;
}

int
main(int argc, char **argv)
{
    pthread_t thread;

    if (argc != 5) {
        fprintf(stderr, "usage: gfapi_fiber VOLFILE LOGFILE PATH XATTR\n");
        return 2;
    }
    path = argv[3];
    xattr = argv[4];
    fibre_stack = mmap(NULL, FIBRE_STACK, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (fibre_stack == MAP_FAILED)
        return 2;
    fs = glfs_new("gfapifiber");
    if (!fs || glfs_set_volfile(fs, argv[1]) != 0 ||
        glfs_set_logging(fs, argv[2], 7 /* GF_LOG_INFO */) != 0 ||
        glfs_init(fs) != 0) {
        fprintf(stderr, "cannot start gfapi: %s\n", strerror(errno));
        return 2;
    }
    if (pthread_create(&thread, NULL, worker, NULL) != 0)
        return 2;
    pthread_join(thread, NULL);
    printf("getxattr %zd %s\n", result,
           result < 0 ? strerrorname_np(result_errno) : "0");
    fflush(stdout);
    _exit(0);
}
