/* readiness-dep: the dependency in bench/readiness-bench.sh, which becomes ready one way or
 * another after a delay, recording when.
 *
 *   readiness-dep notify-fd FILE DELAY_US        write "\n" on fd 3
 *   readiness-dep sd-notify FILE DELAY_US        send "READY=1" to $NOTIFY_SOCKET
 *   readiness-dep tcp FILE DELAY_US PORT         listen on 127.0.0.1:PORT
 *
 * Everything that can be prepared (the socket, its address, the output file) is prepared
 * first; then it sleeps DELAY_US so that tend is idle in epoll_wait when the dependency
 * becomes ready. The timestamps (CLOCK_MONOTONIC and CLOCK_REALTIME) are taken immediately
 * before the notification's system call (notify-fd, sd-notify) or immediately after listen()
 * has returned (tcp), and stored in FILE, which is mapped shared: the store is a few
 * nanoseconds and no system call, so recording adds nothing between the notification and
 * tend's reaction. FILE holds three little-endian int64s: MONO_NS, REAL_NS, then 1 once the
 * first two are written. Afterwards it waits forever (tend kills it with its namespace).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
    fprintf(stderr, "readiness-dep: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int64_t ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static volatile int64_t *slot;

static void stamp(void) {
    int64_t mono = ns(CLOCK_MONOTONIC);
    int64_t real = ns(CLOCK_REALTIME);
    slot[0] = mono;
    slot[1] = real;
    __atomic_store_n(&slot[2], 1, __ATOMIC_RELEASE);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: readiness-dep notify-fd|sd-notify|tcp FILE DELAY_US [PORT]\n");
        return 2;
    }
    const char *mode = argv[1];
    long delay_us = atol(argv[3]);

    int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ftruncate(fd, 3 * sizeof(int64_t)) != 0)
        die("output file");
    slot = mmap(NULL, 3 * sizeof(int64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (slot == MAP_FAILED)
        die("mmap");
    slot[0] = slot[1] = 0; /* fault the page in now */

    int sock = -1;
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    socklen_t un_len = 0;
    if (strcmp(mode, "sd-notify") == 0) {
        const char *path = getenv("NOTIFY_SOCKET");
        if (!path || !*path || strlen(path) >= sizeof un.sun_path) {
            errno = EINVAL;
            die("NOTIFY_SOCKET");
        }
        memcpy(un.sun_path, path, strlen(path));
        if (un.sun_path[0] == '@')
            un.sun_path[0] = '\0'; /* abstract namespace */
        un_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
        sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (sock < 0)
            die("socket");
    } else if (strcmp(mode, "tcp") == 0) {
        if (argc < 5) {
            errno = EINVAL;
            die("tcp needs a PORT");
        }
        struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[4]))};
        in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        if (sock < 0 || setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
            bind(sock, (struct sockaddr *)&in, sizeof in) != 0)
            die("bind");
    } else if (strcmp(mode, "notify-fd") != 0) {
        errno = EINVAL;
        die(mode);
    }

    struct timespec d = {.tv_sec = delay_us / 1000000, .tv_nsec = (delay_us % 1000000) * 1000};
    while (nanosleep(&d, &d) != 0 && errno == EINTR) {
    }

    if (strcmp(mode, "notify-fd") == 0) {
        stamp();
        if (write(3, "\n", 1) != 1)
            die("write fd 3");
    } else if (strcmp(mode, "sd-notify") == 0) {
        stamp();
        if (sendto(sock, "READY=1", 7, 0, (struct sockaddr *)&un, un_len) != 7)
            die("sendto NOTIFY_SOCKET");
    } else {
        if (listen(sock, 64) != 0)
            die("listen");
        stamp();
    }
    for (;;)
        pause();
}
