/* supervisor-init: the tiny init every supervisor of bench/supervisor-bench.sh runs under.
 *
 *   supervisor-init STATUS_FILE PROGRAM [ARGS...]
 *
 * Started as PID 1 of a fresh pid namespace (unshare --pid --fork --mount-proc), so the
 * supervisor under test is never PID 1 itself and all of them are treated alike: a runsvdir
 * or s6-svscan that exits before its services are gone does not take the namespace down with
 * it. It runs PROGRAM, reaps everything, and appends to STATUS_FILE (CLOCK_MONOTONIC ns,
 * comparable with the harness's time.monotonic_ns()):
 *
 *   exec NS             just before PROGRAM's execve (the "supervisor start")
 *   supexit NS STATUS   PROGRAM itself ended
 *   gone NS             no process is left in the namespace (waitpid says ECHILD); then exits 0
 *
 * It installs no signal handlers: as PID 1 it ignores every signal but SIGKILL, which the
 * harness uses to tear the whole namespace down.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int status_fd = -1;

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void note(const char *what, long long ns, int status, int with_status) {
    char line[128];
    int n = with_status ? snprintf(line, sizeof line, "%s %lld %d\n", what, ns, status)
                        : snprintf(line, sizeof line, "%s %lld\n", what, ns);
    if (write(status_fd, line, (size_t)n) < 0) {
        /* Nothing better to do: the harness will time out and say so. */
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: supervisor-init STATUS_FILE PROGRAM [ARGS...]\n");
        return 2;
    }
    status_fd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (status_fd < 0) {
        perror("supervisor-init: status file");
        return 2;
    }
    if (getpid() != 1) {
        /* Outside a pid namespace (debugging): still collect the orphans. */
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    pid_t child = fork();
    if (child < 0) {
        perror("supervisor-init: fork");
        return 2;
    }
    if (child == 0) {
        note("exec", now_ns(), 0, 0);
        execvp(argv[2], argv + 2);
        fprintf(stderr, "supervisor-init: exec %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            note("gone", now_ns(), 0, 0);
            return 0;
        }
        if (pid == child)
            note("supexit", now_ns(), st, 1);
    }
}
