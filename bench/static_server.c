/* The HTTP layer's own ceiling: a libmicrohttpd daemon set up like the service's (internal polling thread,
 * epoll, a thread pool, 16 KiB of connection memory) that answers every request with one fixed JSON body the
 * size of a deal.
 *
 *   static_server PORT THREADS
 *
 * It listens on 127.0.0.1 only and serves until SIGINT or SIGTERM. Like the service it answers on the second
 * call of the access handler (the first one only sets up the request), creates one response per request and
 * sends the same headers (Content-Type and X-Request-Id), so the difference to `GET /api/v1/deals/{id}` is
 * the service's own work: routing, auth, the database round trip, JSON rendering and logging. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A deal as GET /api/v1/deals/{id} renders it (~300 bytes). */
static const char body[] =
    "{\"id\":54321,\"external_id\":\"bench-54321\","
    "\"name\":\"Bench deal 54321: 40 chairs for the new office\",\"price\":1250000,\"pipeline_id\":1,"
    "\"stage_id\":3,\"status\":\"open\",\"manager_id\":2,\"loss_reason_id\":null,"
    "\"created_at\":\"2025-10-01T09:30:00Z\",\"closed_at\":null,\"updated_at\":\"2025-10-01T09:30:00Z\"}";

static int marker;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    if (*con_cls == NULL) {
        *con_cls = &marker;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json; charset=utf-8");
    MHD_add_response_header(resp, "X-Request-Id", "0123456789abcdef01234567");
    enum MHD_Result r = MHD_queue_response(connection, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return r;
}

static long parse_arg(const char *s, long min, long max, const char *what)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "static_server: %s must be a number from %ld to %ld, got '%s'\n", what, min, max, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: static_server PORT THREADS\n");
        return 2;
    }
    long port = parse_arg(argv[1], 1, 65535, "PORT");
    long threads = parse_arg(argv[2], 1, 1024, "THREADS");

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* the pool threads inherit the mask */
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, (uint16_t)port, NULL, NULL, on_request, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)4000, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(16 * 1024),
        MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "static_server: cannot listen on port %ld\n", port);
        return 1;
    }
    fprintf(stderr, "static_server: port %ld, %ld threads, body %zu bytes\n", port, threads, sizeof body - 1);
    int sig = 0;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    return 0;
}
