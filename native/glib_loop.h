/* Public interface of appliance._native: see glib_loop.c for the theory of operation.
 * This header is also fed to cffi's cdef(), so it holds only plain C declarations. */

/* What one hmb_iterate() call did. */
#define HMB_IDLE 0       /* returned without dispatching anything (e.g. woken up) */
#define HMB_DISPATCHED 1 /* dispatched at least one source other than our timer */
#define HMB_TIMED_OUT 2  /* the time limit passed (other sources may have run) */

int hmb_glib_load(void);
const char *hmb_glib_error(void);
const char *hmb_glib_path(void);
int hmb_glib_at_least(unsigned int major, unsigned int minor, unsigned int micro);

void *hmb_context_default(void);
void *hmb_context_new(void);
void hmb_context_unref(void *ctx);

int hmb_iterate(void *ctx, int timeout_ms);
int hmb_pending(void *ctx);
void hmb_wakeup(void *ctx);

int hmb_idle_bump(void *ctx, int *counter);
int hmb_read_counter(int *counter);

int hmb_stdio_flush(void);
