/* A legacy program's view of SysV shared memory, for the container test of [tend.shm]
 * (the busybox rootfs has no tool that makes a segment). Built static by the test.
 *
 *   shmtool create KEY TEXT   make a 4096-byte segment KEY holding TEXT
 *   shmtool read KEY OUTFILE  write the segment's text (or "missing") to OUTFILE
 *
 * Either way it then waits for SIGTERM and exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <unistd.h>

static void on_term(int sig) {
    (void)sig;
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc < 4)
        return 2;
    signal(SIGTERM, on_term);
    key_t key = (key_t)strtol(argv[2], NULL, 0);
    if (strcmp(argv[1], "create") == 0) {
        int id = shmget(key, 4096, IPC_CREAT | 0600);
        if (id < 0)
            return 1;
        char *p = shmat(id, NULL, 0);
        if (p == (void *)-1)
            return 1;
        strncpy(p, argv[3], 4095);
        printf("created\n");
    } else {
        FILE *out = fopen(argv[3], "w");
        if (!out)
            return 1;
        int id = shmget(key, 0, 0);
        if (id < 0) {
            fprintf(out, "missing\n");
        } else {
            char *p = shmat(id, NULL, SHM_RDONLY);
            if (p == (void *)-1)
                return 1;
            fprintf(out, "%s\n", p);
        }
        fclose(out);
    }
    fflush(stdout);
    for (;;)
        pause();
}
