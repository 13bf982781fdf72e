/* readiness-spawn: baselines for bench/readiness-bench.sh, with no tend involved.
 *
 *   readiness-spawn exec  N STAMP DIR GAP_US   the exec cost
 *   readiness-spawn floor N STAMP DIR GAP_US   a minimal C supervisor's reaction
 *
 * exec: N times, read CLOCK_MONOTONIC, then start `STAMP DIR/stamp exit` the way tend starts
 * a service (Rust's std::process::Command with a pre_exec hook: fork(), then in the child
 * setsid() and an unblocked signal mask, then execve(); the parent blocks reading a
 * close-on-exec pipe until the exec has happened), wait for it to exit, and print STAMP's
 * own first timestamp minus the one taken before fork(), in ns, one line per spawn.
 *
 * floor: N times, a forked writer sleeps, reads CLOCK_MONOTONIC and writes "\n" to a pipe; this
 * process, blocked in epoll_wait on the pipe's read end, wakes, reads the byte and starts
 * STAMP as above. Prints STAMP's timestamp minus the writer's: the notify-fd path with the
 * least a supervisor can do, to compare tend with.
 *
 * Each spawn is preceded by a pause of GAP_US plus up to GAP_US more (pseudo-random), as
 * under tend, where the dependency waits before it says it is ready: the spawning process is
 * then idle, as tend is, rather than hot from the previous round.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
    fprintf(stderr, "readiness-spawn: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_us(long us) {
    struct timespec d = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
    while (nanosleep(&d, &d) != 0 && errno == EINTR) {
    }
}

/* fork + exec the way std::process::Command::spawn does with a pre_exec hook. */
static pid_t spawn(char *const argv[]) {
    int err[2];
    if (pipe2(err, O_CLOEXEC) != 0)
        die("pipe2");
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setsid();
        execv(argv[0], argv);
        int e = errno;
        if (write(err[1], &e, sizeof e) < 0) {
        }
        _exit(127);
    }
    close(err[1]);
    int e = 0;
    ssize_t n;
    while ((n = read(err[0], &e, sizeof e)) < 0 && errno == EINTR) {
    }
    close(err[0]);
    if (n > 0) {
        errno = e;
        die("exec");
    }
    return pid;
}

static int64_t read_stamp(const char *path) {
    char buf[64] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, buf, sizeof buf - 1) <= 0)
        die(path);
    close(fd);
    unlink(path);
    return atoll(buf);
}

static void wait_ok(pid_t pid) {
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            die("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        errno = ECHILD;
        die("child failed");
    }
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: readiness-spawn exec|floor N STAMP DIR GAP_US\n");
        return 2;
    }
    int floor = strcmp(argv[1], "floor") == 0;
    int n = atoi(argv[2]);
    long gap = atol(argv[5]);
    char path[4096];
    snprintf(path, sizeof path, "%s/stamp", argv[4]);
    char *child[] = {argv[3], path, "exit", NULL};
    unsigned seed = (unsigned)getpid();

    volatile int64_t *shared = mmap(NULL, sizeof(int64_t), PROT_READ | PROT_WRITE,
                                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED)
        die("mmap");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");

    for (int i = 0; i < n; i++) {
        long pause_us = gap + (long)(rand_r(&seed) % (unsigned)(gap + 1));
        int64_t t0;
        pid_t writer = -1;
        int p[2] = {-1, -1};
        if (floor) {
            if (pipe2(p, O_CLOEXEC) != 0)
                die("pipe2");
            fcntl(p[0], F_SETFL, O_NONBLOCK);
            struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) != 0)
                die("epoll_ctl");
            writer = fork();
            if (writer < 0)
                die("fork");
            if (writer == 0) {
                sleep_us(pause_us);
                *shared = mono_ns();
                if (write(p[1], "\n", 1) != 1)
                    _exit(1);
                _exit(0);
            }
            close(p[1]);
            struct epoll_event got;
            int k;
            while ((k = epoll_wait(ep, &got, 1, -1)) < 0 && errno == EINTR) {
            }
            if (k != 1)
                die("epoll_wait");
            char c;
            if (read(p[0], &c, 1) != 1)
                die("read");
            pid_t pid = spawn(child);
            epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL);
            close(p[0]);
            wait_ok(pid);
            wait_ok(writer);
            t0 = *shared;
        } else {
            sleep_us(pause_us);
            t0 = mono_ns();
            pid_t pid = spawn(child);
            wait_ok(pid);
        }
        printf("%lld\n", (long long)(read_stamp(path) - t0));
    }
    return 0;
}
