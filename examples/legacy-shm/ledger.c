/* ledger: a small stand-in for a legacy program that keeps its state in SysV shared memory
 * (use case 6), to run the example end to end. Put your own programs in its place.
 *
 *   ledger count   attaches segment 0x4c454447 (making it if there is none), counts its own
 *                  starts in it and adds an entry every second
 *   ledger watch   attaches the same segment read-only and reports it every 5 seconds
 *
 * Both count on the segment outliving them, as such programs do: across a restart of the
 * process (the segment stays in the container's IPC namespace) and, with tend's [tend.shm],
 * across a restart of the container. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#define KEY 0x4c454447 /* "LEDG" */
#define MAGIC 0x6c656467u

struct ledger {
	uint32_t magic;
	uint32_t starts;
	uint64_t entries;
};

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	if (argc != 2 || (strcmp(argv[1], "count") != 0 && strcmp(argv[1], "watch") != 0)) {
		fprintf(stderr, "usage: ledger count|watch\n");
		return 2;
	}
	int count = strcmp(argv[1], "count") == 0;
	setvbuf(stdout, NULL, _IOLBF, 0);

	int id = shmget(KEY, 4096, count ? IPC_CREAT | 0600 : 0);
	if (id < 0) {
		fprintf(stderr, "ledger: shmget 0x%x: %s\n", KEY, strerror(errno));
		return 1;
	}
	struct ledger *l = shmat(id, NULL, count ? 0 : SHM_RDONLY);
	if (l == (void *)-1) {
		fprintf(stderr, "ledger: shmat 0x%x: %s\n", KEY, strerror(errno));
		return 1;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term; /* no SA_RESTART: sleep() returns at once */
	sigaction(SIGTERM, &sa, NULL);

	if (count) {
		if (l->magic != MAGIC) {
			memset(l, 0, sizeof *l);
			l->magic = MAGIC;
			printf("new ledger in segment 0x%x\n", KEY);
		}
		l->starts++;
		printf("start %u, %llu entries so far\n", (unsigned)l->starts,
		       (unsigned long long)l->entries);
		while (!stop) {
			sleep(1);
			if (!stop)
				l->entries++;
		}
		printf("stopping at %llu entries\n", (unsigned long long)l->entries);
	} else {
		while (!stop) {
			printf("%u starts, %llu entries\n", (unsigned)l->starts,
			       (unsigned long long)l->entries);
			sleep(5);
		}
	}
	return 0;
}
