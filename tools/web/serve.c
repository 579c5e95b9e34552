/* serve.c — `latentdb serve DB`: the JSON API and the pages over HTTP, on
 * libmicrohttpd with a pool of threads sharing one read-only DB handle. Each answer
 * reads one snapshot, so the commits of an ingest running meanwhile show in the
 * next answers without a restart.
 *
 * Slow clients: libmicrohttpd's connection timeout is an idle timeout, which a
 * client sending a byte a second never meets, so a watchdog thread shuts down every
 * connection whose request headers have not all arrived within HEADER_SECONDS of
 * its start (or of the end of its previous request). */
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../cli/cli.h"
#include "web.h"

static const char *USAGE_SERVE =
    "usage: latentdb serve DB [--port 8080] [--host 127.0.0.1] [--threads N]\n"
    "Serves the database's pages and a JSON API (GET /api/info, /api/dicts,\n"
    "/api/top/DICT/LATENT?k=&context=&distinct_seq=, /api/samples/DICT/LATENT?by=,\n"
    "/api/latent/DICT/LATENT?bins=, /api/density/DICT?bins=, /api/cooc/DICT/LATENT?scope=&with=&k=,\n"
    "/api/search/DICT?text=&k=&where=, /api/seq/N?dict=), each the JSON of the same CLI\n"
    "command with --json. Read-only; only this machine can connect unless --host says\n"
    "otherwise (0.0.0.0: every interface). --port 0 picks a free port. Stops on Ctrl-C.\n";

#define HEADER_SECONDS 5.0 /* for a request's headers to arrive */
#define IDLE_SECONDS 30    /* libmicrohttpd's idle timeout */
#define MAX_CONNECTIONS 512

typedef struct conn {
    int fd;
    double since;              /* waiting for a request's headers since */
    int busy;                  /* its headers are in */
    struct conn *prev, *next;
} conn;

static struct {
    ldb_db *db;
    pthread_mutex_t mu;
    conn head;                 /* the open connections, a ring */
    int stop;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static void notify_conn(void *cls, struct MHD_Connection *c, void **socket_ctx,
                        enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn *x = calloc(1, sizeof *x);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!x || !ci)
            return free(x);
        x->fd = ci->connect_fd;
        x->since = now();
        pthread_mutex_lock(&S.mu);
        x->next = S.head.next;
        x->prev = &S.head;
        S.head.next->prev = x;
        S.head.next = x;
        pthread_mutex_unlock(&S.mu);
        *socket_ctx = x;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_ctx) {
        conn *x = *socket_ctx;
        pthread_mutex_lock(&S.mu);
        x->prev->next = x->next;
        x->next->prev = x->prev;
        pthread_mutex_unlock(&S.mu);
        free(x);
        *socket_ctx = NULL;
    }
}

static conn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* A request ended: the connection waits for the next one's headers from now. */
static void request_done(void *cls, struct MHD_Connection *c, void **req_ctx,
                         enum MHD_RequestTerminationCode code)
{
    (void)cls, (void)req_ctx, (void)code;
    conn *x = conn_of(c);
    if (x) {
        pthread_mutex_lock(&S.mu);
        x->busy = 0;
        x->since = now();
        pthread_mutex_unlock(&S.mu);
    }
}

static void *watchdog(void *arg)
{
    (void)arg;
    for (;;) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        double t = now();
        pthread_mutex_lock(&S.mu);
        if (S.stop) {
            pthread_mutex_unlock(&S.mu);
            return NULL;
        }
        for (conn *x = S.head.next; x != &S.head; x = x->next)
            if (!x->busy && t - x->since > HEADER_SECONDS && x->fd >= 0) {
                shutdown(x->fd, SHUT_RDWR); /* libmicrohttpd sees the end and closes it */
                x->fd = -1;
            }
        pthread_mutex_unlock(&S.mu);
    }
}

/* Query parameters through libmicrohttpd. */
static const char *mhd_get(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, name);
}

typedef struct each_ctx {
    int (*fn)(void *, const char *);
    void *ctx2;
    int rc;
} each_ctx;

static enum MHD_Result each_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    (void)kind, (void)value;
    each_ctx *e = cls;
    if (!e->rc && e->fn(e->ctx2, key ? key : ""))
        e->rc = -1;
    return e->rc ? MHD_NO : MHD_YES;
}

static int mhd_each(void *ctx, int (*fn)(void *, const char *), void *ctx2)
{
    each_ctx e = {fn, ctx2, 0};
    MHD_get_connection_values(ctx, MHD_GET_ARGUMENT_KIND, each_arg, &e);
    return e.rc;
}

static enum MHD_Result send_resp(struct MHD_Connection *c, int status, const char *type, char *body,
                                 size_t len, int head)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    /* scripts only from this server: text from the corpus can never run, even if
     * it escaped escaping; inline style attributes shade the tokens */
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                            "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                            "form-action 'self'; frame-ancestors 'none'");
    (void)head; /* libmicrohttpd sends no body for HEAD itself */
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **req_ctx)
{
    (void)cls, (void)version, (void)upload;
    conn *x = conn_of(c);
    if (x) {
        pthread_mutex_lock(&S.mu);
        x->busy = 1;
        pthread_mutex_unlock(&S.mu);
    }
    /* The first call has the headers only: a response queued then ends the connection
     * after it (the client might still send a body), so every request answers on the
     * next call, once any body has been read (and ignored), and keep-alive holds. */
    if (!*req_ctx) {
        *req_ctx = c;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    int head = !strcmp(method, "HEAD");
    if (strcmp(method, "GET") && !head) {
        static const char msg[] = "{\"error\":\"only GET and HEAD\"}\n";
        return send_resp(c, 405, "application/json; charset=utf-8", strdup(msg), sizeof msg - 1, 0);
    }
    wquery q = {mhd_get, mhd_each, c};
    wresp r = {0};
    web_route(S.db, url, &q, &r);
    if (!r.body) { /* never: web_route always answers */
        static const char msg[] = "{\"error\":\"out of memory\"}\n";
        return send_resp(c, 500, "application/json; charset=utf-8", strdup(msg), sizeof msg - 1, 0);
    }
    return send_resp(c, r.status, r.type, r.body, r.len, head);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls, (void)fmt, (void)ap; /* (client errors are not the server's to print) */
}

int cmd_serve(int argc, char **argv)
{
    const char *path = NULL, *host = "127.0.0.1";
    uint32_t port = 8080, threads = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc) {
            if (cli_parse_u32(argv[++i], &port) || port > 65535)
                return cli_usage(USAGE_SERVE, "--port takes 0..65535");
        } else if (!strcmp(argv[i], "--host") && i + 1 < argc)
            host = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (cli_parse_u32(argv[++i], &threads) || !threads || threads > 256)
                return cli_usage(USAGE_SERVE, "--threads takes 1..256");
        } else if (argv[i][0] == '-')
            return cli_usage(USAGE_SERVE, "unknown option or missing value '%s'", argv[i]);
        else if (!path)
            path = argv[i];
        else
            return cli_usage(USAGE_SERVE, "unexpected argument '%s'", argv[i]);
    }
    if (!path)
        return cli_usage(USAGE_SERVE, "serve needs a DB");
    if (!threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n < 2 ? 2 : n > 16 ? 16 : (uint32_t)n;
    }
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[8];
    snprintf(ps, sizeof ps, "%u", port);
    int gai = getaddrinfo(host, ps, &hints, &ai);
    if (gai)
        return cli_fail("--host '%s': %s", host, gai_strerror(gai));
    int rc = cli_open_db(path, LDB_OPEN_READ, &S.db);
    if (rc) {
        freeaddrinfo(ai);
        return rc;
    }
    /* signals: the threads libmicrohttpd starts inherit a mask that blocks them, and
     * this thread waits for them */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    S.head.next = S.head.prev = &S.head;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
                     (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
        flags |= MHD_USE_EPOLL;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, handle, NULL,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_SECONDS,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
        MHD_OPTION_NOTIFY_CONNECTION, notify_conn, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_END);
    if (!d) {
        int e = errno;
        freeaddrinfo(ai);
        ldb_db_close(S.db);
        return cli_fail("cannot listen on %s port %u: %s", host, port,
                        e ? strerror(e) : "libmicrohttpd could not start");
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned bound = di ? di->port : port;
    int v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    pthread_t wd;
    int have_wd = pthread_create(&wd, NULL, watchdog, NULL) == 0;
    printf("latentdb: serving %s at http://%s%s%s:%u/ (Ctrl-C stops)\n", path, v6 ? "[" : "", host,
           v6 ? "]" : "", bound);
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "latentdb: stopping (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    MHD_stop_daemon(d);
    pthread_mutex_lock(&S.mu);
    S.stop = 1;
    pthread_mutex_unlock(&S.mu);
    if (have_wd)
        pthread_join(wd, NULL);
    ldb_db_close(S.db);
    return 0;
}
