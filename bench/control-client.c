/* Timed control-socket and /metrics clients for control-bench.sh and usage-bench.sh. Prints
 * one latency in nanoseconds per line on stdout, for the harness to summarise.
 *
 *   control-client raw SOCKET N [SAVE_FILE]
 *       N times: socket, connect, send {"v":1,"cmd":"status"}\n, read until tend closes,
 *       close. Timed from before socket() to after close(), so the cost of starting a
 *       process is left out. Every answer must be one line starting {"reply":"status"; the
 *       last one is written to SAVE_FILE if given.
 *
 *   control-client spawn N PROGRAM [ARGS...]
 *       N times: posix_spawn PROGRAM (stdin and stdout /dev/null) and wait for it. Timed
 *       from before posix_spawn to after waitpid. PROGRAM must exit 0 every time.
 *
 *   control-client http PORT N [SAVE_FILE]
 *       N times: a TCP connection to 127.0.0.1:PORT, GET /metrics, read until tend closes,
 *       close; timed like raw. Every answer must start "HTTP/1.1 200 "; the last one's body
 *       is written to SAVE_FILE if given.
 *
 * Exits 2 (with a message on stderr) at the first failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char REQUEST[] = "{\"v\":1,\"cmd\":\"status\"}\n";
static const char EXPECT[] = "{\"reply\":\"status\"";

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void fail(const char *what, long i) {
    fprintf(stderr, "control-client: request %ld: %s: %s\n", i, what, strerror(errno));
    exit(2);
}

static int run_raw(const char *path, long n, const char *save) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) {
        fprintf(stderr, "control-client: socket path too long\n");
        return 2;
    }
    strcpy(addr.sun_path, path);
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    long long *lat = malloc(sizeof *lat * (size_t)n);
    if (!buf || !lat) {
        fprintf(stderr, "control-client: out of memory\n");
        return 2;
    }
    for (long i = 0; i < n; i++) {
        long long t0 = now_ns();
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) fail("socket", i);
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) fail("connect", i);
        if (write(fd, REQUEST, sizeof REQUEST - 1) != (ssize_t)(sizeof REQUEST - 1))
            fail("write", i);
        len = 0;
        for (;;) {
            if (len == cap) {
                cap *= 2;
                buf = realloc(buf, cap);
                if (!buf) fail("realloc", i);
            }
            ssize_t r = read(fd, buf + len, cap - len);
            if (r < 0) {
                if (errno == EINTR) continue;
                fail("read", i);
            }
            if (r == 0) break;
            len += (size_t)r;
        }
        close(fd);
        lat[i] = now_ns() - t0;
        if (len < sizeof EXPECT || memcmp(buf, EXPECT, sizeof EXPECT - 1) != 0 ||
            buf[len - 1] != '\n' || memchr(buf, '\n', len) != buf + len - 1) {
            fprintf(stderr, "control-client: request %ld: unexpected answer (%zu bytes): %.*s\n",
                    i, len, (int)(len > 300 ? 300 : len), buf);
            return 2;
        }
    }
    if (save) {
        FILE *f = fopen(save, "w");
        if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) fail("saving the answer", n);
    }
    for (long i = 0; i < n; i++) printf("%lld\n", lat[i]);
    return 0;
}

static int run_spawn(long n, char **argv) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    long long *lat = malloc(sizeof *lat * (size_t)n);
    if (!lat) {
        fprintf(stderr, "control-client: out of memory\n");
        return 2;
    }
    for (long i = 0; i < n; i++) {
        long long t0 = now_ns();
        pid_t pid;
        int err = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
        if (err != 0) {
            errno = err;
            fail("posix_spawn", i);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0) {
            if (errno != EINTR) fail("waitpid", i);
        }
        lat[i] = now_ns() - t0;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "control-client: run %ld: %s exited with status 0x%x\n", i, argv[0],
                    status);
            return 2;
        }
    }
    for (long i = 0; i < n; i++) printf("%lld\n", lat[i]);
    return 0;
}

static const char GET[] = "GET /metrics HTTP/1.1\r\nHost: tend\r\n\r\n";
static const char OK[] = "HTTP/1.1 200 ";

static int run_http(int port, long n, const char *save) {
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    long long *lat = malloc(sizeof *lat * (size_t)n);
    if (!buf || !lat) {
        fprintf(stderr, "control-client: out of memory\n");
        return 2;
    }
    for (long i = 0; i < n; i++) {
        long long t0 = now_ns();
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) fail("socket", i);
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) fail("connect", i);
        if (write(fd, GET, sizeof GET - 1) != (ssize_t)(sizeof GET - 1)) fail("write", i);
        len = 0;
        for (;;) {
            if (len == cap) {
                cap *= 2;
                buf = realloc(buf, cap);
                if (!buf) fail("realloc", i);
            }
            ssize_t r = read(fd, buf + len, cap - len);
            if (r < 0) {
                if (errno == EINTR) continue;
                fail("read", i);
            }
            if (r == 0) break;
            len += (size_t)r;
        }
        close(fd);
        lat[i] = now_ns() - t0;
        if (len < sizeof OK || memcmp(buf, OK, sizeof OK - 1) != 0) {
            fprintf(stderr, "control-client: request %ld: unexpected answer (%zu bytes): %.*s\n",
                    i, len, (int)(len > 300 ? 300 : len), buf);
            return 2;
        }
    }
    if (save) {
        char *body = memmem(buf, len, "\r\n\r\n", 4);
        size_t from = body ? (size_t)(body - buf) + 4 : 0;
        FILE *f = fopen(save, "w");
        if (!f || fwrite(buf + from, 1, len - from, f) != len - from || fclose(f) != 0)
            fail("saving the answer", n);
    }
    for (long i = 0; i < n; i++) printf("%lld\n", lat[i]);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "raw") == 0)
        return run_raw(argv[2], atol(argv[3]), argc > 4 ? argv[4] : NULL);
    if (argc >= 4 && strcmp(argv[1], "spawn") == 0) return run_spawn(atol(argv[2]), argv + 3);
    if (argc >= 4 && strcmp(argv[1], "http") == 0)
        return run_http(atoi(argv[2]), atol(argv[3]), argc > 4 ? argv[4] : NULL);
    fprintf(stderr,
            "usage: control-client raw SOCKET N [SAVE_FILE]\n"
            "       control-client spawn N PROGRAM [ARGS...]\n"
            "       control-client http PORT N [SAVE_FILE]\n");
    return 2;
}
