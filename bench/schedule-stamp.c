/* schedule-stamp: the task of bench/schedule-bench.sh. Its first action is to read the
 * clocks; everything else comes after.
 *
 *   schedule-stamp FILE
 *
 * Appends "MONO_NS REAL_NS\n" (CLOCK_MONOTONIC and CLOCK_REALTIME at the start of main) to
 * FILE with one write (O_APPEND, so runs never mix their lines) and exits 0. Linked
 * statically by the script, so that exec has no dynamic loader to run and the start cost is
 * small and the same under tend, cron and busybox crond.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    struct timespec mono, real;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &real);
    if (argc != 2)
        return 2;
    char line[64];
    int n = snprintf(line, sizeof line, "%lld %lld\n",
                     (long long)mono.tv_sec * 1000000000LL + mono.tv_nsec,
                     (long long)real.tv_sec * 1000000000LL + real.tv_nsec);
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return 1;
    return write(fd, line, (size_t)n) == n ? 0 : 1;
}
