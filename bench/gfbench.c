/*
 * gfbench: a gfapi load generator for glupy's benchmarks (bench/run.py runs it).
 *
 * It loads one or more client volfiles with gfapi (--volume NAME=VOLFILE;
 * client-side translators, glupy included, run in this process), then runs
 * each requested operation with several threads on every volume in turn,
 * in slices (A B C, B C A, ...), so that volumes compared with each other
 * are measured side by side under the same machine load. One line per
 * slice:
 *
 *   result vol=A op=lookup threads=4 slice=0 ops=81234 seconds=2.000
 *          ops_per_s=40617.0 mib_per_s=0.0 cpu_s=1.9 errors=0 ... dump=-
 *
 * and "mark start|end vol=A op=..." lines when a measurement starts and
 * ends, so that the reader can sample the bricks at the same moments.
 * With --ack-marks the workers are paused between two operations around
 * each mark, and it waits for a line on stdin before going on: a reader
 * that switches something on or off at the marks (callgrind's counting)
 * then brackets exactly the operations measured.
 *
 * Operations (each a loop of one gfapi call per "op"):
 *   lookup    glfs_stat of an existing path: a lookup fop on the last name
 *   stat      glfs_h_stat of a handle: a stat fop
 *   create    glfs_creat of a new name + glfs_close: lookup, create, flush, release
 *   write4k   glfs_pwrite of 4 KiB into a 4 MiB file per thread
 *   read4k    glfs_pread of 4 KiB from a 4 MiB file per thread
 *   missing   glfs_stat of names that do not exist (--names of them, cycled)
 *   seqwrite  glfs_pwrite of --io-size (1 MiB) sequentially over --file-size
 *   seqread   glfs_pread of --io-size sequentially over --file-size
 *   mixed     a random mix of all of the above (create is followed by unlink)
 * "op:N" runs op with N threads (default --threads).
 *
 * Timing: --seconds S per slice after --warmup seconds (before a volume's
 * first slice of an operation); or --count N operations per slice (split
 * over the threads). With --progress S a "progress ops=N" line is printed
 * every S seconds. A thread that makes no progress for --stall-limit seconds
 * is reported and the program exits 3 (a deadlock). The program never calls
 * glfs_fini (it can take 10 s in 10.3): it exits with _exit once done.
 *
 * Not Python on purpose: a client-side glupy layer embeds CPython in this
 * process, which a Python driver (with its own libpython) cannot host.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <glob.h>
#include <glusterfs/api/glfs-handles.h>
#include <glusterfs/api/glfs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ROOT_DIR "/gfbench"
#define MISSING_DIR ROOT_DIR "/missing"
#define SMALL_IO 4096
#define SMALL_FILE (4 << 20)
#define LOOKUP_FILES 16
#define MAX_OPS 16
#define MAX_THREADS 256
#define MAX_VOLUMES 32

struct options {
    const char *volume_names[MAX_VOLUMES];
    const char *volfiles[MAX_VOLUMES];
    int volume_count;
    const char *workdir;
    int dump;
    int ack_marks;
    int slices;
    int log_level;
    const char *ops[MAX_OPS]; /* "name" or "name:threads" */
    int op_threads[MAX_OPS];
    int op_count;
    int threads;
    double seconds;
    double warmup;
    long count;
    long names;
    size_t io_size;
    size_t file_size;
    double progress;
    double stall_limit;
};

static struct options opt = {
    .log_level = 7,
    .slices = 1,
    .threads = 1,
    .seconds = 2.0,
    .warmup = 0.5,
    .names = 200,
    .io_size = 1 << 20,
    .file_size = 64 << 20,
    .stall_limit = 60.0,
};

/* One gfapi instance per volfile, each with its own threads' state. */
struct volume {
    const char *name;
    glfs_t *fs;
    struct worker *workers;
};

static struct volume volumes[MAX_VOLUMES];
static struct worker *workers; /* the threads of the volume running now */
static int active_threads;     /* how many of them the operation uses */

/* Per-thread state; padded so counters of different threads never share a
 * cache line. */
struct worker {
    glfs_t *fs;
    int index;
    pthread_t thread;
    const struct op *op;
    long quota; /* count mode: operations left; -1 in time mode */
    _Atomic uint64_t ops;
    _Atomic uint64_t errors;
    atomic_bool done;
    int first_errno;
    glfs_fd_t *small_fd;  /* write4k / read4k */
    glfs_fd_t *seq_fd;    /* seqwrite / seqread */
    glfs_object_t *handles[LOOKUP_FILES];
    char *buf;
    uint64_t next;  /* name index, offset step, create serial */
    uint64_t rng;
    char pad[64];
};

struct op {
    const char *name;
    int (*setup)(struct worker *);
    int (*step)(struct worker *); /* 0: done as expected; else an errno */
    int is_bulk;                  /* reports MiB/s of io_size per op */
};

static atomic_bool stop_now;
/* --ack-marks: workers wait between two operations while `hold` is set. */
static atomic_bool hold;
static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_changed = PTHREAD_COND_INITIALIZER;
static int holding;
static pthread_barrier_t start_line;

/* ------------------------------------------------------------ utilities */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_for(double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "gfbench: %s: %s\n", what, strerror(err));
    fflush(stdout);
    _exit(2);
}

static long rss_kb(void)
{
    FILE *status = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    if (!status)
        return -1;
    while (fgets(line, sizeof line, status))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(status);
    return kb;
}

static uint64_t next_random(struct worker *w)
{
    /* xorshift64: cheap, per thread, good enough to pick operations */
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return w->rng;
}

static void thread_path(char *out, size_t size, int index, const char *leaf)
{
    snprintf(out, size, ROOT_DIR "/t%d/%s", index, leaf);
}

static int make_dir(glfs_t *fs, const char *path)
{
    if (glfs_mkdir(fs, path, 0755) != 0 && errno != EEXIST)
        return errno;
    return 0;
}

/* Fills buf with a recognisable pattern (a magic first line, as a file
 * type sniffer would look for). */
static void fill_pattern(char *buf, size_t size, int index)
{
    for (size_t i = 0; i < size; i++)
        buf[i] = 'a' + (char)((i + index) % 26);
    memcpy(buf, "GFBENCH\n", size < 8 ? size : 8);
}

static int write_whole(glfs_fd_t *fd, const char *buf, size_t chunk, size_t total)
{
    for (size_t off = 0; off < total; off += chunk) {
        ssize_t done = glfs_pwrite(fd, buf, chunk, (off_t)off, 0, NULL, NULL);
        if (done != (ssize_t)chunk)
            return done < 0 ? errno : EIO;
    }
    return 0;
}

/* One buffer per thread, large enough for every operation. */
static int ensure_buffer(struct worker *w)
{
    size_t size = opt.io_size > SMALL_IO ? opt.io_size : SMALL_IO;
    if (w->buf)
        return 0;
    w->buf = malloc(size);
    if (!w->buf)
        return ENOMEM;
    fill_pattern(w->buf, size, w->index);
    return 0;
}

/* ---------------------------------------------------------- operations */

static int setup_files(struct worker *w)
{
    char path[256];
    struct stat st;
    for (int k = 0; k < LOOKUP_FILES; k++) {
        char leaf[32];
        snprintf(leaf, sizeof leaf, "f%d", k);
        thread_path(path, sizeof path, w->index, leaf);
        if (!w->handles[k]) {
            glfs_fd_t *fd = glfs_creat(w->fs, path, O_WRONLY, 0644);
            if (!fd)
                return errno;
            glfs_close(fd);
            w->handles[k] = glfs_h_lookupat(w->fs, NULL, path, &st, 0);
            if (!w->handles[k])
                return errno;
        }
    }
    return 0;
}

static int step_lookup(struct worker *w)
{
    char path[256], leaf[32];
    struct stat st;
    snprintf(leaf, sizeof leaf, "f%d", (int)(w->next++ % LOOKUP_FILES));
    thread_path(path, sizeof path, w->index, leaf);
    return glfs_stat(w->fs, path, &st) == 0 ? 0 : errno;
}

static int step_stat(struct worker *w)
{
    struct stat st;
    glfs_object_t *handle = w->handles[w->next++ % LOOKUP_FILES];
    return glfs_h_stat(w->fs, handle, &st) == 0 ? 0 : errno;
}

static int setup_create(struct worker *w)
{
    (void)w;
    return 0;
}

static int create_one(struct worker *w, int then_unlink)
{
    char path[256], leaf[48];
    snprintf(leaf, sizeof leaf, "c%llu", (unsigned long long)w->next++);
    thread_path(path, sizeof path, w->index, leaf);
    glfs_fd_t *fd = glfs_creat(w->fs, path, O_WRONLY | O_EXCL, 0644);
    if (!fd)
        return errno;
    if (glfs_close(fd) != 0)
        return errno;
    if (then_unlink && glfs_unlink(w->fs, path) != 0)
        return errno;
    return 0;
}

static int step_create(struct worker *w)
{
    return create_one(w, 0);
}

static int setup_small_file(struct worker *w)
{
    char path[256];
    int err;
    if (w->small_fd)
        return 0;
    if ((err = ensure_buffer(w)))
        return err;
    thread_path(path, sizeof path, w->index, "small");
    w->small_fd = glfs_creat(w->fs, path, O_RDWR, 0644);
    if (!w->small_fd)
        return errno;
    return write_whole(w->small_fd, w->buf, SMALL_IO, SMALL_FILE);
}

static int step_write4k(struct worker *w)
{
    off_t off = (off_t)((w->next++ % (SMALL_FILE / SMALL_IO)) * SMALL_IO);
    ssize_t done = glfs_pwrite(w->small_fd, w->buf, SMALL_IO, off, 0, NULL, NULL);
    return done == SMALL_IO ? 0 : (done < 0 ? errno : EIO);
}

static int step_read4k(struct worker *w)
{
    off_t off = (off_t)((w->next++ % (SMALL_FILE / SMALL_IO)) * SMALL_IO);
    ssize_t done = glfs_pread(w->small_fd, w->buf, SMALL_IO, off, 0, NULL);
    return done == SMALL_IO ? 0 : (done < 0 ? errno : EIO);
}

static int setup_missing(struct worker *w)
{
    /* Threads start at different names: they still share all of them. */
    w->next = (uint64_t)(w->index * (opt.names / (active_threads ? active_threads : 1)));
    return 0;
}

static int step_missing(struct worker *w)
{
    char path[256];
    struct stat st;
    snprintf(path, sizeof path, MISSING_DIR "/not-here-%llu.py",
             (unsigned long long)(w->next++ % (uint64_t)opt.names));
    if (glfs_stat(w->fs, path, &st) == 0)
        return EEXIST; /* it must not exist */
    return errno == ENOENT ? 0 : errno;
}

static int setup_seq(struct worker *w)
{
    char path[256];
    int err;
    if (w->seq_fd)
        return 0;
    if ((err = ensure_buffer(w)))
        return err;
    thread_path(path, sizeof path, w->index, "sequential");
    w->seq_fd = glfs_creat(w->fs, path, O_RDWR, 0644);
    if (!w->seq_fd)
        return errno;
    w->next = 0;
    return write_whole(w->seq_fd, w->buf, opt.io_size, opt.file_size);
}

static int step_seqwrite(struct worker *w)
{
    uint64_t chunks = opt.file_size / opt.io_size;
    off_t off = (off_t)((w->next++ % chunks) * opt.io_size);
    ssize_t done = glfs_pwrite(w->seq_fd, w->buf, opt.io_size, off, 0, NULL, NULL);
    return done == (ssize_t)opt.io_size ? 0 : (done < 0 ? errno : EIO);
}

static int step_seqread(struct worker *w)
{
    uint64_t chunks = opt.file_size / opt.io_size;
    off_t off = (off_t)((w->next++ % chunks) * opt.io_size);
    ssize_t done = glfs_pread(w->seq_fd, w->buf, opt.io_size, off, 0, NULL);
    return done == (ssize_t)opt.io_size ? 0 : (done < 0 ? errno : EIO);
}

static int setup_mixed(struct worker *w)
{
    int err;
    if ((err = setup_files(w)) || (err = setup_small_file(w)) || (err = setup_missing(w)))
        return err;
    w->rng = 0x9E3779B97F4A7C15ULL ^ (uint64_t)(w->index + 1);
    return 0;
}

static int step_mixed(struct worker *w)
{
    switch (next_random(w) % 6) {
    case 0:
        return step_lookup(w);
    case 1:
        return step_stat(w);
    case 2:
        return step_write4k(w);
    case 3:
        return step_read4k(w);
    case 4:
        return step_missing(w);
    default:
        return create_one(w, 1);
    }
}

static const struct op OPS[] = {
    {"lookup", setup_files, step_lookup, 0},
    {"stat", setup_files, step_stat, 0},
    {"create", setup_create, step_create, 0},
    {"write4k", setup_small_file, step_write4k, 0},
    {"read4k", setup_small_file, step_read4k, 0},
    {"missing", setup_missing, step_missing, 0},
    {"seqwrite", setup_seq, step_seqwrite, 1},
    {"seqread", setup_seq, step_seqread, 1},
    {"mixed", setup_mixed, step_mixed, 0},
};

static const struct op *find_op(const char *name)
{
    for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++)
        if (strcmp(OPS[i].name, name) == 0)
            return &OPS[i];
    return NULL;
}

/* -------------------------------------------------------------- running */

static void *run_worker(void *arg)
{
    struct worker *w = arg;
    pthread_barrier_wait(&start_line);
    while (!atomic_load_explicit(&stop_now, memory_order_relaxed)) {
        if (atomic_load_explicit(&hold, memory_order_acquire)) {
            pthread_mutex_lock(&hold_lock);
            holding++;
            pthread_cond_broadcast(&hold_changed);
            while (atomic_load(&hold))
                pthread_cond_wait(&hold_changed, &hold_lock);
            holding--;
            pthread_mutex_unlock(&hold_lock);
            continue;
        }
        if (w->quota == 0)
            break;
        int err = w->op->step(w);
        if (err && atomic_fetch_add(&w->errors, 1) == 0)
            w->first_errno = err;
        atomic_fetch_add_explicit(&w->ops, 1, memory_order_relaxed);
        if (w->quota > 0)
            w->quota--;
    }
    atomic_store(&w->done, true);
    return NULL;
}

static uint64_t total_ops(void)
{
    uint64_t sum = 0;
    for (int i = 0; i < active_threads; i++)
        sum += atomic_load_explicit(&workers[i].ops, memory_order_relaxed);
    return sum;
}

static int all_done(void)
{
    for (int i = 0; i < active_threads; i++)
        if (!atomic_load(&workers[i].done))
            return 0;
    return 1;
}

/* Watches the workers until the slice ends: prints progress, and exits 3
 * if a thread makes no progress for --stall-limit seconds (a deadlock or a
 * request never answered). */
struct watch {
    uint64_t seen[MAX_THREADS];
    double since[MAX_THREADS];
    double max_stall;
    double next_progress;
};

static void watch_start(struct watch *watch, double t)
{
    memset(watch, 0, sizeof *watch);
    for (int i = 0; i < active_threads; i++)
        watch->since[i] = t;
    watch->next_progress = t + opt.progress;
}

static void watch_tick(struct watch *watch, double t)
{
    for (int i = 0; i < active_threads; i++) {
        uint64_t ops = atomic_load_explicit(&workers[i].ops, memory_order_relaxed);
        if (ops != watch->seen[i] || atomic_load(&workers[i].done)) {
            watch->seen[i] = ops;
            watch->since[i] = t;
            continue;
        }
        double stalled = t - watch->since[i];
        if (stalled > watch->max_stall)
            watch->max_stall = stalled;
        if (stalled > opt.stall_limit) {
            printf("stall thread=%d seconds=%.1f ops=%llu\n", i, stalled,
                   (unsigned long long)ops);
            fflush(stdout);
            _exit(3);
        }
    }
    if (opt.progress > 0 && t >= watch->next_progress) {
        printf("progress t=%.1f ops=%llu max_stall=%.2f\n", t, (unsigned long long)total_ops(),
               watch->max_stall);
        fflush(stdout);
        watch->next_progress += opt.progress;
    }
}

static void wait_and_watch(struct watch *watch, double until, int stop_when_done)
{
    for (;;) {
        double t = now();
        watch_tick(watch, t);
        if ((until > 0 && t >= until) || (stop_when_done && all_done()))
            return;
        sleep_for(0.02);
    }
}

static void start_workers(const struct op *op, long count)
{
    atomic_store(&stop_now, false);
    pthread_barrier_init(&start_line, NULL, (unsigned)active_threads + 1);
    for (int i = 0; i < active_threads; i++) {
        struct worker *w = &workers[i];
        w->op = op;
        atomic_store(&w->ops, 0);
        atomic_store(&w->errors, 0);
        atomic_store(&w->done, false);
        w->first_errno = 0;
        w->quota = count > 0 ? count / active_threads + (i < count % active_threads) : -1;
        int err = pthread_create(&w->thread, NULL, run_worker, w);
        if (err)
            die("pthread_create", err);
    }
    pthread_barrier_wait(&start_line);
}

static void join_workers(void)
{
    atomic_store(&stop_now, true);
    for (int i = 0; i < active_threads; i++)
        pthread_join(workers[i].thread, NULL);
    pthread_barrier_destroy(&start_line);
}

/* --ack-marks: every worker between two operations (or done). */
static void pause_workers(void)
{
    pthread_mutex_lock(&hold_lock);
    atomic_store(&hold, true);
    for (;;) {
        int done = 0;
        for (int i = 0; i < active_threads; i++)
            done += atomic_load(&workers[i].done);
        if (holding + done >= active_threads)
            break;
        pthread_cond_wait(&hold_changed, &hold_lock);
    }
    pthread_mutex_unlock(&hold_lock);
}

static void resume_workers(void)
{
    pthread_mutex_lock(&hold_lock);
    atomic_store(&hold, false);
    pthread_cond_broadcast(&hold_changed);
    pthread_mutex_unlock(&hold_lock);
}

/* --ack-marks: the reader has done what the mark asked for. */
static void wait_for_ack(void)
{
    char line[64];
    if (!fgets(line, sizeof line, stdin)) {
        fprintf(stderr, "gfbench: --ack-marks: stdin ended before a mark was acknowledged\n");
        _exit(2);
    }
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Tells whoever reads our output when measuring starts and ends, so that
 * it can sample other processes (a brick's CPU time) at the same moments. */
static void mark(const char *what, const struct volume *v, const struct op *op)
{
    printf("mark %s vol=%s op=%s threads=%d\n", what, v->name, op->name, active_threads);
    fflush(stdout);
}

/* What one slice measured. */
struct slice {
    uint64_t ops, errors;
    double seconds, cpu, max_stall;
    long rss_before, rss_after;
    int first_errno;
};

/* Runs op on volume v for opt.seconds (after `warmup` seconds not counted),
 * or for `count` operations if count > 0. */
static struct slice run_slice(struct volume *v, const struct op *op, double warmup, long count)
{
    struct watch watch;
    struct slice out = {0};
    uint64_t ops0 = 0;
    double t0, cpu0;

    workers = v->workers;
    out.rss_before = rss_kb();
    start_workers(op, count);
    watch_start(&watch, now());
    if (count <= 0 && warmup > 0)
        wait_and_watch(&watch, now() + warmup, 0);
    if (opt.ack_marks)
        pause_workers();
    mark("start", v, op);
    if (opt.ack_marks)
        wait_for_ack();
    t0 = now();
    cpu0 = cpu_seconds();
    ops0 = total_ops();
    if (opt.ack_marks) {
        resume_workers();
        for (int i = 0; i < active_threads; i++)
            watch.since[i] = t0; /* the pause was not a stall */
    }
    if (count > 0)
        wait_and_watch(&watch, 0, 1);
    else
        wait_and_watch(&watch, t0 + opt.seconds, 0);
    if (opt.ack_marks)
        pause_workers();
    out.seconds = now() - t0;
    out.cpu = cpu_seconds() - cpu0;
    out.ops = total_ops() - ops0;
    mark("end", v, op);
    if (opt.ack_marks) {
        wait_for_ack();
        atomic_store(&stop_now, true);
        resume_workers();
    }
    join_workers();
    out.rss_after = rss_kb();
    out.max_stall = watch.max_stall;
    for (int i = 0; i < active_threads; i++) {
        out.errors += atomic_load(&workers[i].errors);
        if (!out.first_errno)
            out.first_errno = workers[i].first_errno;
    }
    return out;
}

/* Asks gfapi for a statedump of v into --workdir, named after v and op. */
static void statedump(struct volume *v, const char *op_name, char *out, size_t size)
{
    char options[256], pattern[512];
    glob_t found;
    snprintf(out, size, "-");
    if (!opt.dump)
        return;
    /* GlusterFS reads where to dump from this file at each dump. */
    snprintf(options, sizeof options, "/var/run/gluster/glusterdump.%d.options", getpid());
    mkdir("/var/run/gluster", 0755);
    FILE *file = fopen(options, "w");
    if (!file)
        die(options, errno);
    fprintf(file, "path=%s\nall=yes\n", opt.workdir);
    fclose(file);
    glfs_sysrq(v->fs, GLFS_SYSRQ_STATEDUMP);
    unlink(options);
    snprintf(pattern, sizeof pattern, "%s/*.%d.dump.*", opt.workdir, getpid());
    if (glob(pattern, 0, NULL, &found) == 0 && found.gl_pathc > 0) {
        snprintf(out, size, "%s/%s-%s.dump", opt.workdir, v->name, op_name);
        rename(found.gl_pathv[found.gl_pathc - 1], out);
    }
    globfree(&found);
}

static void print_slice(const struct volume *v, const struct op *op, int index,
                        const struct slice *s, const char *dump)
{
    double rate = (double)s->ops / s->seconds;
    if (s->errors)
        fprintf(stderr, "gfbench: %s on %s: %llu errors, first: %s\n", op->name, v->name,
                (unsigned long long)s->errors, strerror(s->first_errno));
    printf("result vol=%s op=%s threads=%d slice=%d ops=%llu seconds=%.3f ops_per_s=%.1f "
           "mib_per_s=%.1f cpu_s=%.3f errors=%llu max_stall=%.2f rss_kb=%ld "
           "rss_delta_kb=%ld dump=%s\n",
           v->name, op->name, active_threads, index, (unsigned long long)s->ops, s->seconds,
           rate, op->is_bulk ? rate * (double)opt.io_size / (1 << 20) : 0.0, s->cpu,
           (unsigned long long)s->errors, s->max_stall, s->rss_after,
           s->rss_after - s->rss_before, dump);
    fflush(stdout);
}

static void setup_op(struct volume *v, const struct op *op)
{
    for (int i = 0; i < active_threads; i++) {
        struct worker *w = &v->workers[i];
        w->fs = v->fs;
        w->index = i;
        w->next = 0;
        int err = op->setup(w);
        if (err) {
            fprintf(stderr, "gfbench: setting up %s on %s for thread %d: %s\n", op->name,
                    v->name, i, strerror(err));
            _exit(2);
        }
    }
}

/* Runs op on every volume, slice after slice, rotating which volume goes
 * first so that none always runs right after another. */
static void run_op(const struct op *op)
{
    char dump[700];
    for (int k = 0; k < opt.volume_count; k++)
        setup_op(&volumes[k], op);
    for (int s = 0; s < opt.slices; s++) {
        for (int k = 0; k < opt.volume_count; k++) {
            struct volume *v = &volumes[(s + k) % opt.volume_count];
            /* Warm up each volume before its first slice of this op. */
            double warmup = s == 0 ? opt.warmup : 0.0;
            struct slice result = run_slice(v, op, warmup, opt.count);
            int last = s == opt.slices - 1;
            if (last)
                statedump(v, op->name, dump, sizeof dump);
            print_slice(v, op, s, &result, last ? dump : "-");
        }
    }
}

/* ---------------------------------------------------------------- setup */

static void usage(void)
{
    fprintf(stderr,
            "usage: gfbench --volume NAME=VOLFILE [--volume ...] --workdir DIR\n"
            "               --op OP[:THREADS][,OP...] [--threads N] [--slices N]\n"
            "               [--seconds S --warmup S | --count N] [--names N]\n"
            "               [--io-size BYTES] [--file-size BYTES] [--dump]\n"
            "               [--progress S] [--stall-limit S] [--log-level N] [--ack-marks]\n"
            "ops: lookup stat create write4k read4k missing seqwrite seqread mixed\n"
            "Logs (NAME.log) and statedumps (--dump: NAME-OP.dump) go to --workdir.\n");
    _exit(64);
}

static double positive(const char *flag, const char *value)
{
    char *end;
    double number = strtod(value, &end);
    if (*end || number < 0 || end == value) {
        fprintf(stderr, "gfbench: %s wants a non-negative number, not %s\n", flag, value);
        usage();
    }
    return number;
}

/* "lookup,stat:4": operations in order, each with its own thread count
 * (0: --threads). */
static void parse_ops(char *list)
{
    for (char *name = strtok(list, ","); name; name = strtok(NULL, ",")) {
        char *colon = strchr(name, ':');
        int threads = 0;
        if (colon) {
            *colon = '\0';
            threads = (int)positive("--op threads", colon + 1);
            if (threads < 1 || threads > MAX_THREADS)
                usage();
        }
        if (!find_op(name)) {
            fprintf(stderr, "gfbench: unknown op %s\n", name);
            usage();
        }
        if (opt.op_count == MAX_OPS)
            usage();
        opt.op_threads[opt.op_count] = threads;
        opt.ops[opt.op_count++] = name;
    }
}

static void parse_volume(char *spec)
{
    char *equals = strchr(spec, '=');
    if (!equals || equals == spec || !equals[1] || opt.volume_count == MAX_VOLUMES) {
        fprintf(stderr, "gfbench: --volume wants NAME=VOLFILE (at most %d)\n", MAX_VOLUMES);
        usage();
    }
    *equals = '\0';
    opt.volume_names[opt.volume_count] = spec;
    opt.volfiles[opt.volume_count++] = equals + 1;
}

static int threads_of(int i)
{
    return opt.op_threads[i] ? opt.op_threads[i] : opt.threads;
}

static void parse(int argc, char **argv)
{
    static const struct option longs[] = {
        {"volume", 1, 0, 'v'},    {"workdir", 1, 0, 'W'},     {"op", 1, 0, 'o'},
        {"threads", 1, 0, 't'},   {"seconds", 1, 0, 's'},     {"warmup", 1, 0, 'w'},
        {"count", 1, 0, 'n'},     {"names", 1, 0, 'N'},       {"io-size", 1, 0, 'b'},
        {"file-size", 1, 0, 'f'}, {"dump", 0, 0, 'd'},        {"progress", 1, 0, 'p'},
        {"slices", 1, 0, 'x'},    {"stall-limit", 1, 0, 'S'}, {"log-level", 1, 0, 'L'},
        {"ack-marks", 0, 0, 'A'}, {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'v': parse_volume(optarg); break;
        case 'W': opt.workdir = optarg; break;
        case 'o': parse_ops(optarg); break;
        case 't': opt.threads = (int)positive("--threads", optarg); break;
        case 's': opt.seconds = positive("--seconds", optarg); break;
        case 'w': opt.warmup = positive("--warmup", optarg); break;
        case 'n': opt.count = (long)positive("--count", optarg); break;
        case 'N': opt.names = (long)positive("--names", optarg); break;
        case 'b': opt.io_size = (size_t)positive("--io-size", optarg); break;
        case 'f': opt.file_size = (size_t)positive("--file-size", optarg); break;
        case 'd': opt.dump = 1; break;
        case 'A': opt.ack_marks = 1; break;
        case 'p': opt.progress = positive("--progress", optarg); break;
        case 'x': opt.slices = (int)positive("--slices", optarg); break;
        case 'S': opt.stall_limit = positive("--stall-limit", optarg); break;
        case 'L': opt.log_level = (int)positive("--log-level", optarg); break;
        default: usage();
        }
    }
    if (opt.volume_count == 0 || !opt.workdir || opt.op_count == 0 || optind != argc)
        usage();
    if (opt.threads < 1 || opt.threads > MAX_THREADS || opt.names < 1 || opt.io_size < 1 ||
        opt.file_size < opt.io_size || opt.slices < 1 || (opt.count <= 0 && opt.seconds <= 0)) {
        fprintf(stderr, "gfbench: need 1..%d threads, names >= 1, file-size >= io-size, "
                        "slices >= 1, and --seconds or --count\n", MAX_THREADS);
        usage();
    }
}

static void connect_volume(struct volume *v, const char *volfile, int most_threads)
{
    char path[PATH_MAX];
    v->fs = glfs_new(v->name);
    if (!v->fs)
        die("glfs_new", errno);
    snprintf(path, sizeof path, "%s/%s.log", opt.workdir, v->name);
    if (glfs_set_volfile(v->fs, volfile) != 0)
        die("glfs_set_volfile", errno);
    if (glfs_set_logging(v->fs, path, opt.log_level) != 0)
        die("glfs_set_logging", errno);
    if (glfs_init(v->fs) != 0)
        die("glfs_init (see the client log)", errno ? errno : EIO);
    int err = make_dir(v->fs, ROOT_DIR);
    if (!err)
        err = make_dir(v->fs, MISSING_DIR);
    for (int i = 0; !err && i < most_threads; i++) {
        snprintf(path, sizeof path, ROOT_DIR "/t%d", i);
        err = make_dir(v->fs, path);
    }
    if (err)
        die("creating the benchmark directories", err);
    v->workers = calloc((size_t)most_threads, sizeof *v->workers);
    if (!v->workers)
        die("calloc", ENOMEM);
}

int main(int argc, char **argv)
{
    int most = 0;
    parse(argc, argv);
    for (int i = 0; i < opt.op_count; i++)
        most = threads_of(i) > most ? threads_of(i) : most;
    for (int k = 0; k < opt.volume_count; k++) {
        volumes[k].name = opt.volume_names[k];
        connect_volume(&volumes[k], opt.volfiles[k], most);
    }
    for (int i = 0; i < opt.op_count; i++) {
        active_threads = threads_of(i);
        run_op(find_op(opt.ops[i]));
    }
    fflush(stdout);
    _exit(0); /* glfs_fini may take 10 s; the bricks see a disconnect */
}
