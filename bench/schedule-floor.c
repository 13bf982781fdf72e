/* schedule-floor: the floor for bench/schedule-bench.sh's lateness: a plain C loop that
 * sleeps until an absolute wall-clock time (clock_nanosleep, TIMER_ABSTIME) and then runs
 * the task with fork and exec, as a scheduler at its best would.
 *
 *   schedule-floor RUNS OFFSET_MS STAMP FILE [setsid]
 *
 * Runs `STAMP FILE` RUNS times, each due OFFSET_MS past a whole second of the wall clock (so
 * as not to meet tend's per-second rule, due at the whole second), and reaps it before the
 * next. With `setsid`, the child calls setsid() before exec, as every service tend starts
 * does (its own session and process group).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 5 && argc != 6)
        return 2;
    long runs = atol(argv[1]);
    long offset_ns = atol(argv[2]) * 1000000L;
    int new_session = argc == 6 && strcmp(argv[5], "setsid") == 0;
    for (long i = 0; i < runs; i++) {
        struct timespec now, due;
        clock_gettime(CLOCK_REALTIME, &now);
        due.tv_sec = now.tv_sec + (now.tv_nsec >= offset_ns ? 1 : 0);
        due.tv_nsec = offset_ns;
        while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &due, NULL) != 0) {
        }
        pid_t pid = fork();
        if (pid == 0) {
            if (new_session)
                setsid();
            execl(argv[3], argv[3], argv[4], (char *)NULL);
            _exit(127);
        }
        if (pid > 0)
            waitpid(pid, NULL, 0);
    }
    return 0;
}
