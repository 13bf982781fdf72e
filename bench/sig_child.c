/*
 * sig_child FIFO: the init's child in the signal-forwarding benchmark.
 *
 * Blocks SIGUSR1 and takes it synchronously with sigwaitinfo(), so delivery cost is one
 * wake-up with no handler in between. For every SIGUSR1 it writes one byte to FIFO, which
 * sig_pinger (outside the namespace) is blocked reading. It first writes 'R' so the pinger
 * knows the mask is in place and no early signal can kill it.
 *
 * It runs until killed; the harness tears the whole pid namespace down when done.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FIFO\n", argv[0]);
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
        perror("sigprocmask");
        return 2;
    }
    int fd = open(argv[1], O_WRONLY);
    if (fd < 0) {
        perror(argv[1]);
        return 2;
    }
    if (write(fd, "R", 1) != 1)
        return 2;
    for (;;) {
        siginfo_t info;
        if (sigwaitinfo(&set, &info) < 0)
            continue; /* EINTR from a stop/continue; nothing to report */
        if (write(fd, "s", 1) != 1)
            return 1;
    }
}
