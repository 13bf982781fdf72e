/* The least a line-prefixing logger does, as a reference for supervisor-bench.sh's log rows:
 * read stdin in 64 KiB blocks, find each newline, copy "NAME | " and the line into an output
 * buffer, write it to stdout. No ring of recent lines, no timestamps, no partial-line timer,
 * no back-pressure: what tend does beyond this is what its log rows pay for on top.
 *
 * Usage: writer | supervisor-prefix NAME > /dev/null */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char in[65536];
/* Worst case: every input byte a newline, each line getting the prefix. */
static char out[sizeof in * 2 + 64 * sizeof in];

int main(int argc, char **argv) {
    if (argc != 2 || strlen(argv[1]) > 60) {
        fprintf(stderr, "usage: supervisor-prefix NAME (at most 60 bytes)\n");
        return 2;
    }
    char prefix[64];
    size_t plen = (size_t)snprintf(prefix, sizeof prefix, "%s | ", argv[1]);
    ssize_t n;
    while ((n = read(0, in, sizeof in)) > 0) {
        size_t o = 0;
        const char *p = in, *end = in + n;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t len = (size_t)((nl ? nl + 1 : end) - p);
            memcpy(out + o, prefix, plen);
            o += plen;
            memcpy(out + o, p, len);
            o += len;
            p += len;
        }
        for (size_t w = 0; w < o;) {
            ssize_t k = write(1, out + w, o - w);
            if (k <= 0) {
                perror("supervisor-prefix: write");
                return 1;
            }
            w += (size_t)k;
        }
    }
    return n < 0 ? 1 : 0;
}
