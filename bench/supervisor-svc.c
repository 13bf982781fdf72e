/* supervisor-svc: the service every supervisor in bench/supervisor-bench.sh runs.
 *
 *   supervisor-svc [NAME]
 *
 * NAME defaults to the basename of the working directory, so runit's and s6's `run` can be a
 * symlink to this binary (runsv and s6-supervise start ./run in the service directory) and no
 * shell sits between the supervisor and the service. Everything else comes from the
 * environment, which every supervisor passes down:
 *
 *   BENCH_MARKERS   file to append records to (O_APPEND, one write each):
 *                     start NAME PID NS         first thing at start (PID as seen in its namespace)
 *                     stopped NAME PID NS       slowstop: graceful exit after SIGTERM
 *                     wdone NAME PID T0 T1 BYTES  writer: all bytes written between T0 and T1
 *                   NS, T0, T1 are CLOCK_MONOTONIC nanoseconds.
 *   BENCH_MODE      idle (default): wait forever, like `sleep infinity`
 *                   slowstop: on SIGTERM wait BENCH_STOP_MS (default 500) ms, then exit 0
 *                   writer: write BENCH_LOG_BYTES of BENCH_LINE-byte lines (default 100) to
 *                     stdout in BENCH_CHUNK-byte writes (default: as many whole lines as fit
 *                     in 64 KiB), after BENCH_WRITE_DELAY_MS (default 300) ms so that the
 *                     reader has started, then wait forever (or exit 0 with BENCH_EXIT=1);
 *                     with BENCH_WRITER_CPU=N it moves itself to CPU N first
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t term_received;

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long env_num(const char *name, long long dflt) {
    const char *v = getenv(name);
    return v && *v ? atoll(v) : dflt;
}

static void record(const char *line, int n) {
    const char *path = getenv("BENCH_MARKERS");
    if (!path)
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    if (write(fd, line, (size_t)n) < 0) {
        /* the harness times out and reports it */
    }
    close(fd);
}

static void on_term(int sig) {
    (void)sig;
    term_received = 1;
}

static void wait_forever(void) {
    for (;;)
        pause();
}

static int write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

int main(int argc, char **argv) {
    long long t_start = now_ns();
    char name[256];
    if (argc > 1) {
        snprintf(name, sizeof name, "%.200s", argv[1]);
    } else {
        char cwd[4096];
        if (!getcwd(cwd, sizeof cwd))
            snprintf(cwd, sizeof cwd, "unknown");
        const char *base = strrchr(cwd, '/');
        snprintf(name, sizeof name, "%.200s", base ? base + 1 : cwd);
    }
    const char *mode = getenv("BENCH_MODE");
    if (!mode || !*mode)
        mode = "idle";
    int pid = (int)getpid();
    char line[512];

    if (strcmp(mode, "slowstop") == 0) {
        /* The handler is in place before the start marker, so a stop that follows it is
         * always graceful. */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_term;
        sigaction(SIGTERM, &sa, NULL);
    }
    int n = snprintf(line, sizeof line, "start %s %d %lld\n", name, pid, t_start);
    record(line, n);

    if (strcmp(mode, "slowstop") == 0) {
        while (!term_received)
            pause();
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        long long ms = env_num("BENCH_STOP_MS", 500);
        until.tv_sec += ms / 1000;
        until.tv_nsec += (ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR) {
        }
        n = snprintf(line, sizeof line, "stopped %s %d %lld\n", name, pid, now_ns());
        record(line, n);
        return 0;
    }

    if (strcmp(mode, "writer") == 0) {
        long long total = env_num("BENCH_LOG_BYTES", 1LL << 30);
        long long line_len = env_num("BENCH_LINE", 100);
        if (line_len < 2 || line_len > 65536)
            line_len = 100;
        long long chunk = env_num("BENCH_CHUNK", (65536 / line_len) * line_len);
        if (chunk < line_len)
            chunk = line_len;
        chunk -= chunk % line_len;
        char *buf = malloc((size_t)chunk);
        if (!buf)
            return 1;
        for (long long off = 0; off < chunk; off += line_len) {
            int k = snprintf(buf + off, (size_t)line_len, "%s line %09lld ", name, off / line_len);
            if (k >= line_len)
                k = (int)line_len - 1;
            memset(buf + off + k, 'x', (size_t)(line_len - 1 - k));
            buf[off + line_len - 1] = '\n';
        }
        signal(SIGPIPE, SIG_IGN);
        const char *cpu = getenv("BENCH_WRITER_CPU");
        if (cpu && *cpu) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(atoi(cpu), &set);
            if (sched_setaffinity(0, sizeof set, &set) != 0)
                return 1;
        }
        /* Let the reader (cat, a logger, the supervisor) get going first, so its start-up
         * is not counted against the pipe. */
        usleep((useconds_t)env_num("BENCH_WRITE_DELAY_MS", 300) * 1000);
        long long t0 = now_ns(), written = 0;
        while (written < total) {
            long long len = total - written < chunk ? total - written : chunk;
            if (write_all(1, buf, (size_t)len) < 0)
                break;
            written += len;
        }
        long long t1 = now_ns();
        n = snprintf(line, sizeof line, "wdone %s %d %lld %lld %lld\n", name, pid, t0, t1, written);
        record(line, n);
        if (env_num("BENCH_EXIT", 0))
            return 0;
        wait_forever();
    }

    wait_forever();
    return 0;
}
