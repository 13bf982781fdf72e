/*
 * reap_workload: the fork work behind the "reap 10,000 orphans" benchmark.
 *
 *   reap_workload orphan   N   # the init must reap N orphans
 *   reap_workload selfreap N   # same forks, reaped by their own parents (no-init baseline)
 *
 * Each of the N rounds forks a "middle" process that forks a "grandchild" and exits. The
 * grandchild exits at once. In orphan mode nobody but the init can wait for the grandchild:
 * its parent (the middle) is gone, so it is reparented to PID 1 and lingers as a zombie until
 * the init reaps it. In selfreap mode the middle waits for the grandchild itself before
 * exiting, so the process count, fork count and exit count are identical and the init has
 * nothing to do.
 *
 * The clock stops when every grandchild is gone from the pid table, not when the loop ends:
 * a slow init shows up as a long "tail". Grandchild pids are handed back through a shared
 * mapping (no extra syscalls in the timed loop), and after the loop we poll them with
 * kill(pid, 0), which succeeds for a zombie and fails with ESRCH once it has been reaped.
 * The pid namespace is fresh and N is far below pid_max, so pids are not reused.
 *
 * Output: one JSON line on stdout. With --hold the program then waits for EOF on stdin before
 * exiting, so the harness can read the init's counters while the init is still alive.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Give up waiting for the init after this long: an init that never reaps must not hang us. */
#define REAP_DEADLINE_NS (30LL * 1000 * 1000 * 1000)

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what)
{
    perror(what);
    exit(2);
}

/* fork() can fail transiently with EAGAIN while thousands of zombies pile up. */
static pid_t fork_retrying(void)
{
    for (int tries = 0;; tries++) {
        pid_t pid = fork();
        if (pid >= 0 || errno != EAGAIN || tries > 1000)
            return pid;
        usleep(1000);
    }
}

static void wait_for(pid_t pid)
{
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* One round: middle forks grandchild; in selfreap mode the middle also reaps it. */
static void one_round(int selfreap, pid_t *slot)
{
    pid_t middle = fork_retrying();
    if (middle < 0)
        die("fork (middle)");
    if (middle == 0) {
        pid_t grandchild = fork_retrying();
        if (grandchild < 0)
            _exit(1);
        if (grandchild == 0)
            _exit(0);
        *slot = grandchild;
        if (selfreap)
            wait_for(grandchild);
        _exit(0);
    }
    wait_for(middle);
}

/* Returns how many grandchildren still exist (zombie or not) when we stop waiting. */
static int wait_until_reaped(const pid_t *pids, int n, long long deadline)
{
    int lo = 0;
    while (lo < n) {
        if (pids[lo] <= 0 || (kill(pids[lo], 0) < 0 && errno == ESRCH)) {
            lo++;
            continue;
        }
        if (now_ns() > deadline)
            break;
        /* Short sleep rather than a spin: on a small machine a spinning poller would steal
         * the CPU the init needs to do the reaping we are waiting for. */
        struct timespec pause = {0, 20 * 1000};
        nanosleep(&pause, NULL);
    }
    int left = 0;
    for (int i = lo; i < n; i++)
        if (pids[i] > 0 && !(kill(pids[i], 0) < 0 && errno == ESRCH))
            left++;
    return left;
}

/* Independent cross-check: zombies visible in this namespace's /proc. */
static int count_zombies(void)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    int zombies = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        char *close_paren = strrchr(buf, ')'); /* comm may contain spaces */
        if (close_paren && close_paren[1] == ' ' && close_paren[2] == 'Z')
            zombies++;
    }
    closedir(d);
    return zombies;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s orphan|selfreap N [--hold]\n", argv[0]);
        return 2;
    }
    int selfreap = strcmp(argv[1], "selfreap") == 0;
    if (!selfreap && strcmp(argv[1], "orphan") != 0) {
        fprintf(stderr, "unknown mode %s\n", argv[1]);
        return 2;
    }
    int n = atoi(argv[2]);
    int hold = argc > 3 && strcmp(argv[3], "--hold") == 0;
    if (n <= 0)
        return 2;

    pid_t *pids = mmap(NULL, sizeof(pid_t) * n, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (pids == MAP_FAILED)
        die("mmap");
    /* Touch every page now so page faults do not land inside the timed loop. */
    memset(pids, 0, sizeof(pid_t) * n);

    long long t0 = now_ns();
    for (int i = 0; i < n; i++)
        one_round(selfreap, &pids[i]);
    long long t_loop = now_ns();
    int unreaped = wait_until_reaped(pids, n, t_loop + REAP_DEADLINE_NS);
    long long t_end = now_ns();

    printf("{\"mode\": \"%s\", \"n\": %d, \"total_ms\": %.3f, \"loop_ms\": %.3f, "
           "\"tail_ms\": %.3f, \"unreaped\": %d, \"zombies_left\": %d}\n",
           argv[1], n, (t_end - t0) / 1e6, (t_loop - t0) / 1e6, (t_end - t_loop) / 1e6,
           unreaped, count_zombies());
    fflush(stdout);

    if (hold) {
        char c;
        while (read(0, &c, 1) > 0)
            ;
    }
    return unreaped ? 1 : 0;
}
