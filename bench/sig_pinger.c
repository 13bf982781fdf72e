/*
 * sig_pinger PID FIFO ITERATIONS GAP_US WAIT_READY: measures signal round trips from outside.
 *
 * Each iteration: take a timestamp, kill(PID, SIGUSR1), block until sig_child writes its
 * byte to FIFO, take a second timestamp. With PID = the init, that is the init's forwarding
 * path plus one child wake-up and one pipe write; with PID = sig_child itself (the no-init
 * baseline) it is the same minus the init, so the difference is what the init adds.
 *
 * The next signal is only sent after the previous echo arrived, so standard-signal
 * coalescing cannot hide a loss: an echo that does not come within LOST_TIMEOUT_MS counts
 * as lost. GAP_US of idle time between iterations lets the CPUs go idle, as they would in a
 * real container, instead of measuring a hot loop only. With WAIT_READY=1 it first waits
 * for sig_child's 'R' (the first run against a fresh child).
 *
 * Output, for the harness to pool across runs: "lost N aborted 0|1" on the first line, then
 * one round-trip time in nanoseconds per line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define LOST_TIMEOUT_MS 1000
#define READY_TIMEOUT_MS 10000
/* An init that drops signals entirely should not cost ITERATIONS seconds. */
#define MAX_CONSECUTIVE_LOSSES 5

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Waits up to timeout_ms for one byte; returns it, or -1 on timeout/error. */
static int read_byte(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    for (;;) {
        int r = poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        unsigned char c;
        ssize_t n = read(fd, &c, 1);
        if (n == 1)
            return c;
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        return -1;
    }
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s PID FIFO ITERATIONS GAP_US WAIT_READY\n", argv[0]);
        return 2;
    }
    pid_t target = (pid_t)atoi(argv[1]);
    int iterations = atoi(argv[3]);
    long gap_us = atol(argv[4]);
    int wait_ready = atoi(argv[5]);
    if (target <= 1 || iterations <= 0)
        return 2;

    /* O_RDWR: never blocks on open and never reads EOF, whoever opens first. */
    int fd = open(argv[2], O_RDWR | O_NONBLOCK);
    if (fd < 0) {
        perror(argv[2]);
        return 2;
    }
    if (wait_ready && read_byte(fd, READY_TIMEOUT_MS) != 'R') {
        fprintf(stderr, "sig_pinger: child never became ready\n");
        return 2;
    }

    long long *lat = calloc(iterations, sizeof *lat);
    if (!lat)
        return 2;
    int got = 0, lost = 0, consecutive = 0;
    for (int i = 0; i < iterations; i++) {
        struct timespec gap = {gap_us / 1000000, (gap_us % 1000000) * 1000};
        nanosleep(&gap, NULL);
        long long t0 = now_ns();
        if (kill(target, SIGUSR1) != 0) {
            perror("kill");
            return 2;
        }
        if (read_byte(fd, LOST_TIMEOUT_MS) < 0) {
            lost++;
            if (++consecutive >= MAX_CONSECUTIVE_LOSSES)
                break;
            continue;
        }
        lat[got++] = now_ns() - t0;
        consecutive = 0;
    }
    printf("lost %d aborted %d\n", lost, consecutive >= MAX_CONSECUTIVE_LOSSES);
    for (int i = 0; i < got; i++)
        printf("%lld\n", lat[i]);
    return 0;
}
