/* readiness-listen: the service of the idle wake-up part of bench/readiness-bench.sh, a
 * small TCP listener that health checks connect to.
 *
 *   readiness-listen PORT LOG DELAY_MS
 *
 * Waits DELAY_MS, listens on 127.0.0.1:PORT, then accepts connections for ever, closing each
 * at once and appending its CLOCK_MONOTONIC time in ns to LOG (one line per connection, one
 * write each). The harness counts from LOG how many checks tend actually made in its window.
 * Writes nothing to stdout or stderr, so tend has no output to read from it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 4)
        return 2;
    int log = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log < 0)
        return 1;
    long delay_ms = atol(argv[3]);
    struct timespec d = {.tv_sec = delay_ms / 1000, .tv_nsec = (delay_ms % 1000) * 1000000};
    while (nanosleep(&d, &d) != 0 && errno == EINTR) {
    }
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (sock < 0 || setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(sock, (struct sockaddr *)&in, sizeof in) != 0 || listen(sock, 64) != 0)
        return 1;
    for (;;) {
        int c = accept4(sock, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return 1;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        char line[32];
        int n = snprintf(line, sizeof line, "%lld\n",
                         (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
        if (write(log, line, (size_t)n) != n)
            return 1;
        close(c);
    }
}
