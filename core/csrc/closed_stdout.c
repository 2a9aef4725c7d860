/*
 * A closed standard output (`tool >&-`) must be a write error, but Rust's runtime puts
 * /dev/null, opened read-write, in place of a closed fd 0-2 before `main`: output written
 * there would be lost without a word, and it looks exactly like stdout on /dev/null
 * opened read-write on purpose (Python's subprocess.DEVNULL, `1<>/dev/null`). This
 * constructor runs before Rust's runtime and puts /dev/null opened *read-only* in a
 * closed stdout's place instead: no one gives a tool a read-only stdout on purpose, and
 * every write to it fails (EBADF), which kpipe_core::write_stdout reports. (In C because
 * the Rust code forbids `unsafe`; nothing calls it, the linker keeps it whole.)
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

__attribute__((constructor)) static void kpipe_keep_stdout_closed(void) {
    if (fcntl(STDOUT_FILENO, F_GETFD) != -1 || errno != EBADF) {
        return;
    }
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return;
    }
    if (fd != STDOUT_FILENO) {
        /* dup2 clears close-on-exec on the copy. */
        dup2(fd, STDOUT_FILENO);
        close(fd);
    } else {
        fcntl(fd, F_SETFD, 0);
    }
}
