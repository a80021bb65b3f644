/* Public interface of appliance._fanout: see fanout.c.
 * This header is also fed to cffi's cdef(), so it holds only plain C declarations. */

void hmb_send_all(const int *fds, size_t count, const void *data, size_t size,
                  ssize_t *results);
