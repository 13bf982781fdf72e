/* supervisor-floor: the least a supervisor can do to restart a service, as a yardstick for
 * the restart-latency row of bench/supervisor-bench.sh.
 *
 *   supervisor-floor PROGRAM NAME
 *
 * Starts PROGRAM NAME in a session of its own and, each time it dies, starts it again at
 * once: blocking waitpid, fork, setsid, execv. No logging, no state, no delay. What it measures
 * is the machine's cost of a process death, its notification, a fork and an exec.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t start(char **argv) {
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        execv(argv[1], argv + 1);
        _exit(127);
    }
    return pid;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: supervisor-floor PROGRAM NAME\n");
        return 2;
    }
    pid_t child = start(argv);
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, 0);
        if (pid < 0) {
            usleep(10000); /* fork failed earlier: do not spin */
            child = start(argv);
            continue;
        }
        if (pid == child)
            child = start(argv);
    }
}
