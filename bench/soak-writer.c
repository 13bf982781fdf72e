/* soak-writer: the service of bench/soak.sh. Writes numbered lines and keeps a child that
 * writes numbered lines too, so that the soak's SIGKILLs hit both a service's main process and
 * its children.
 *
 *   soak-writer NAME
 *
 * Environment (set in the soak's tend.toml):
 *   SOAK_STATE        directory for the per-process record files (required)
 *   SOAK_INTERVAL_MS  pause between two lines, default 50
 *   SOAK_BURST        every this many pauses, write a burst of as many lines at once (0:
 *                     never), default 50
 *
 * Every process (the main process and each child it forks) is one *instance*: it draws a
 * random 64-bit token at start, so instances stay apart even when the kernel reuses a pid. The
 * main process writes to stdout, its child to stderr; each line is
 *
 *     NAME TOKEN ROLE SEQ PAYLOAD$
 *
 * with TOKEN 16 hex digits, ROLE `m` (main) or `c` (child), SEQ 1, 2, 3, ... and PAYLOAD
 * SEQ % 61 copies of the letter 'a' + SEQ % 26, so that a line cut anywhere no longer matches.
 * Each line (at most 150 bytes, far below PIPE_BUF) goes out with one write(): a pipe takes it
 * whole or not at all, so no kill can leave half a line in the pipe.
 *
 * The record file SOAK_STATE/NAME.TOKEN.ROLE holds two 64-bit counters in a shared mapping:
 * `attempted` is set to SEQ just before the write() of line SEQ, `done` just after it returns.
 * A SIGKILL can fall between the two: then line `attempted` may or may not have reached the
 * pipe, and the soak's check accepts either; every line up to `done` must have.
 *
 * The main process reaps its child and forks a new one whenever the old one is gone (killed).
 * SIGTERM (tend's stop signal) ends every process at once (default action).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct record {
    volatile uint64_t attempted;
    volatile uint64_t done;
};

static const char *name;
static const char *state_dir;
static long interval_ms;
static long burst;

static void fail(const char *what) {
    /* To stderr: it shows in tend's output and the soak's check counts it as a bad line. */
    dprintf(2, "soak-writer %s: %s: %s\n", name, what, strerror(errno));
    _exit(111);
}

/* A fresh token and its record file, mapped. */
static struct record *new_instance(char role, char token[17]) {
    uint64_t t;
    if (getrandom(&t, sizeof t, 0) != sizeof t)
        fail("getrandom");
    snprintf(token, 17, "%016llx", (unsigned long long)t);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.%s.%c", state_dir, name, token, role);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        fail(path);
    if (ftruncate(fd, sizeof(struct record)) != 0)
        fail("ftruncate");
    struct record *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (r == MAP_FAILED)
        fail("mmap");
    close(fd);
    return r;
}

static void write_line(int fd, struct record *r, const char *token, char role, uint64_t seq) {
    char line[256];
    int n = snprintf(line, sizeof line, "%s %s %c %llu ", name, token, role,
                     (unsigned long long)seq);
    int len = (int)(seq % 61);
    memset(line + n, 'a' + (int)(seq % 26), (size_t)len);
    n += len;
    line[n++] = '$';
    line[n++] = '\n';
    r->attempted = seq;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    ssize_t w = write(fd, line, (size_t)n);
    if (w != n) {
        /* A pipe write of this size is all or nothing; anything else is an error. */
        if (w >= 0)
            errno = EIO;
        fail("write");
    }
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    r->done = seq;
}

static void pause_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Writes lines to `fd` forever; the main process also keeps a child alive. */
static _Noreturn void run(void) {
    int fd = 1;
    char role = 'm';
    char token[17];
    struct record *r;
    pid_t child;
    uint64_t seq;
instance:
    r = new_instance(role, token);
    child = 0;
    seq = 0;
    for (long it = 1;; it++) {
        if (role == 'm') {
            int status;
            if (child > 0 && waitpid(child, &status, WNOHANG) == child)
                child = 0;
            if (child == 0) {
                child = fork();
                if (child < 0)
                    child = 0; /* try again next time */
                else if (child == 0) {
                    fd = 2;
                    role = 'c';
                    goto instance;
                }
            }
        }
        long n = (burst > 0 && it % burst == 0) ? burst : 1;
        for (long i = 0; i < n; i++)
            write_line(fd, r, token, role, ++seq);
        pause_ms(interval_ms);
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: soak-writer NAME\n");
        return 2;
    }
    name = argv[1];
    state_dir = getenv("SOAK_STATE");
    if (!state_dir || !*state_dir) {
        fprintf(stderr, "soak-writer: SOAK_STATE is not set\n");
        return 2;
    }
    const char *v = getenv("SOAK_INTERVAL_MS");
    interval_ms = v && *v ? atol(v) : 50;
    v = getenv("SOAK_BURST");
    burst = v && *v ? atol(v) : 50;
    run();
}
