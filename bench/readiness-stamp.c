/* readiness-stamp: the dependent in bench/readiness-bench.sh. Its first action is to read
 * the clocks; everything else comes after.
 *
 *   readiness-stamp FILE hold|exit
 *
 * Writes "MONO_NS REAL_NS\n" (CLOCK_MONOTONIC and CLOCK_REALTIME at the start of main) to
 * FILE.tmp and renames it to FILE, so a reader never sees half a line. Then waits forever
 * (`hold`: under tend, where exiting would get it restarted) or exits 0 (`exit`: under the
 * baseline spawner). Linked statically by the script, so that exec has no dynamic loader to
 * run and the start cost is small and the same under tend and under the baseline.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    struct timespec mono, real;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &real);
    if (argc != 3)
        return 2;
    char line[64], tmp[4096];
    int n = snprintf(line, sizeof line, "%lld %lld\n",
                     (long long)mono.tv_sec * 1000000000LL + mono.tv_nsec,
                     (long long)real.tv_sec * 1000000000LL + real.tv_nsec);
    if (snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]) >= (int)sizeof tmp)
        return 2;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, line, (size_t)n) != n || close(fd) != 0 || rename(tmp, argv[1]) != 0)
        return 1;
    if (strcmp(argv[2], "hold") == 0)
        for (;;)
            pause();
    return 0;
}
