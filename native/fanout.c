/* One message to many sockets: the inner loop of the audio fan-out.
 *
 * Every client of a group gets the very same bytes each window. In Python, the
 * bookkeeping around each client's system call costs more than the call; here it is
 * one loop of non-blocking sends, with the GIL released, and Python looks only at the
 * clients whose send fell short.
 */

#include <errno.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "fanout.h"

/* results[i] is what send() wrote to fds[i] (maybe less than size), or -errno:
 * -EAGAIN when that socket's buffer is full. Never blocks, never raises SIGPIPE. */
void hmb_send_all(const int *fds, size_t count, const void *data, size_t size,
                  ssize_t *results)
{
    for (size_t i = 0; i < count; i++) {
        ssize_t sent;
        do {
            sent = send(fds[i], data, size, MSG_DONTWAIT | MSG_NOSIGNAL);
        } while (sent < 0 && errno == EINTR);
        results[i] = sent >= 0 ? sent : -(ssize_t)errno;
    }
}
