/*
 * Drive a GLib main context from Python without PyGObject and without GLib headers.
 *
 * Theory of operation
 * -------------------
 * The Zoom Meeting SDK for Linux delivers its callbacks only while a GLib main context
 * is iterated on the thread that initialised it. We need three things from GLib: run
 * one bounded iteration of a context, wake a blocked iteration from another thread,
 * and (for tests and diagnostics) schedule a trivial idle source. That is a dozen
 * functions, so we declare their prototypes here and resolve them with dlsym at run
 * time instead of compiling against glib-2.0 headers: building the package then needs
 * only gcc and the Python headers.
 *
 * The library is opened by its soname, "libglib-2.0.so.0". The dynamic linker keeps
 * one copy of a soname per process, so if the SDK is (or later gets) loaded, both it
 * and this module use the very same GLib and the same default main context; if the
 * two ever differed, callbacks would silently never arrive, which is why
 * hmb_glib_path() reports which file was actually bound.
 *
 * Every call into this module from Python goes through cffi, which releases the GIL
 * for the duration of the C call, so a blocking iteration never stalls other Python
 * threads; SDK callbacks dispatched during it take the GIL themselves.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "glib_loop.h"

#define HMB_GLIB_SONAME "libglib-2.0.so.0"

/* The GLib ABI types we touch, spelled out (they are stable since GLib 2.0). */
typedef int gboolean;
typedef unsigned int guint;
typedef void *gpointer;
typedef gboolean (*GSourceFunc)(gpointer user_data);
typedef void (*GDestroyNotify)(gpointer data);

static struct {
    void *(*context_default)(void);
    void *(*context_new)(void);
    void (*context_unref)(void *ctx);
    gboolean (*context_iteration)(void *ctx, gboolean may_block);
    gboolean (*context_pending)(void *ctx);
    void (*context_wakeup)(void *ctx);
    void *(*timeout_source_new)(guint interval_ms);
    void *(*idle_source_new)(void);
    void (*source_set_callback)(void *src, GSourceFunc fn, gpointer data,
                                GDestroyNotify notify);
    guint (*source_attach)(void *src, void *ctx);
    void (*source_destroy)(void *src);
    void (*source_unref)(void *src);
    const char *(*check_version)(guint major, guint minor, guint micro);
} g;

static void *handle;
static char error_text[512];
static char lib_path[1024];
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

static int bind_symbol(void **slot, const char *name)
{
    dlerror();
    *slot = dlsym(handle, name);
    if (*slot == NULL) {
        const char *why = dlerror();
        snprintf(error_text, sizeof error_text, "symbol %s not found in %s: %s", name,
                 HMB_GLIB_SONAME, why ? why : "(no reason given)");
        return -1;
    }
    return 0;
}

int hmb_glib_load(void)
{
    int rc = 0;

    pthread_mutex_lock(&load_lock);
    if (handle != NULL)
        goto out;

    /* RTLD_GLOBAL so a library loaded after us that needs GLib binds to this copy. */
    handle = dlopen(HMB_GLIB_SONAME, RTLD_NOW | RTLD_GLOBAL);
    if (handle == NULL) {
        const char *why = dlerror();
        snprintf(error_text, sizeof error_text, "cannot load %s: %s", HMB_GLIB_SONAME,
                 why ? why : "(no reason given)");
        rc = -1;
        goto out;
    }

#define BIND(field, name)                                 \
    if (bind_symbol((void **)&g.field, name) != 0) {      \
        rc = -1;                                          \
        goto fail;                                        \
    }
    BIND(context_default, "g_main_context_default");
    BIND(context_new, "g_main_context_new");
    BIND(context_unref, "g_main_context_unref");
    BIND(context_iteration, "g_main_context_iteration");
    BIND(context_pending, "g_main_context_pending");
    BIND(context_wakeup, "g_main_context_wakeup");
    BIND(timeout_source_new, "g_timeout_source_new");
    BIND(idle_source_new, "g_idle_source_new");
    BIND(source_set_callback, "g_source_set_callback");
    BIND(source_attach, "g_source_attach");
    BIND(source_destroy, "g_source_destroy");
    BIND(source_unref, "g_source_unref");
    BIND(check_version, "glib_check_version");
#undef BIND

    {
        Dl_info info;
        if (dladdr((void *)g.context_default, &info) != 0 && info.dli_fname != NULL)
            snprintf(lib_path, sizeof lib_path, "%s", info.dli_fname);
    }
    goto out;

fail:
    dlclose(handle);
    handle = NULL;
    memset(&g, 0, sizeof g);
out:
    pthread_mutex_unlock(&load_lock);
    return rc;
}

const char *hmb_glib_error(void)
{
    return error_text;
}

const char *hmb_glib_path(void)
{
    return lib_path;
}

int hmb_glib_at_least(unsigned int major, unsigned int minor, unsigned int micro)
{
    return g.check_version(major, minor, micro) == NULL;
}

void *hmb_context_default(void)
{
    return g.context_default();
}

void *hmb_context_new(void)
{
    return g.context_new();
}

void hmb_context_unref(void *ctx)
{
    g.context_unref(ctx);
}

static gboolean timeout_fired(gpointer data)
{
    *(volatile int *)data = 1;
    return 0; /* G_SOURCE_REMOVE */
}

int hmb_iterate(void *ctx, int timeout_ms)
{
    int dispatched;
    volatile int timed_out = 0;
    void *timer = NULL;

    if (timeout_ms == 0)
        return g.context_iteration(ctx, 0) ? HMB_DISPATCHED : HMB_IDLE;

    /*
     * g_main_context_iteration() can block without limit, so a one-shot timeout
     * source on the same context bounds it: whichever is ready first (an SDK source,
     * our timer, or a wakeup from another thread) ends the iteration.
     */
    if (timeout_ms > 0) {
        timer = g.timeout_source_new((guint)timeout_ms);
        g.source_set_callback(timer, timeout_fired, (gpointer)&timed_out, NULL);
        g.source_attach(timer, ctx);
    }

    dispatched = g.context_iteration(ctx, 1);

    if (timer != NULL) {
        g.source_destroy(timer);
        g.source_unref(timer);
    }
    if (!dispatched)
        return HMB_IDLE;
    /* Our timer ran, so the time limit is up whatever else was dispatched. */
    return timed_out ? HMB_TIMED_OUT : HMB_DISPATCHED;
}

int hmb_pending(void *ctx)
{
    return g.context_pending(ctx) ? 1 : 0;
}

void hmb_wakeup(void *ctx)
{
    g.context_wakeup(ctx);
}

static gboolean idle_bump(gpointer data)
{
    __atomic_add_fetch((int *)data, 1, __ATOMIC_SEQ_CST);
    return 0; /* G_SOURCE_REMOVE */
}

int hmb_idle_bump(void *ctx, int *counter)
{
    void *src = g.idle_source_new();
    guint id;

    g.source_set_callback(src, idle_bump, counter, NULL);
    id = g.source_attach(src, ctx);
    g.source_unref(src); /* the context keeps its own reference until it fires */
    return (int)id;
}

int hmb_read_counter(int *counter)
{
    return __atomic_load_n(counter, __ATOMIC_SEQ_CST);
}

int hmb_stdio_flush(void)
{
    return fflush(NULL);
}
