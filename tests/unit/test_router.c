/* Route matching (http.h router_match) against a small table of our own: literal and {param} segments, 405
 * detection with the Allow list, and where the captured parameters point. */
#include <criterion/criterion.h>
#include <string.h>
#include "salesops/http.h"

enum {
    R_HEALTHZ,
    R_DEALS_LIST,
    R_DEALS_CREATE,
    R_DEALS_SUMMARY,
    R_DEAL_GET,
    R_DEAL_PATCH,
    R_DEAL_CLOSE,
    R_NOTE_GET,
    R_NOTE_DELETE,
    R_COUNT
};

static const struct so_route routes[] = {
    [R_HEALTHZ] = {"GET", "/healthz", ROUTE_PUBLIC, ROUTE_NO_DB, NULL},
    [R_DEALS_LIST] = {"GET", "/api/v1/deals", 0, 0, NULL},
    [R_DEALS_CREATE] = {"POST", "/api/v1/deals", 0, ROUTE_JSON_BODY, NULL},
    [R_DEALS_SUMMARY] = {"GET", "/api/v1/deals/summary", 0, 0, NULL},
    [R_DEAL_GET] = {"GET", "/api/v1/deals/{id}", 0, 0, NULL},
    [R_DEAL_PATCH] = {"PATCH", "/api/v1/deals/{id}", 0, ROUTE_JSON_BODY, NULL},
    [R_DEAL_CLOSE] = {"POST", "/api/v1/deals/{id}/close", 0, ROUTE_JSON_BODY, NULL},
    [R_NOTE_GET] = {"GET", "/api/v1/deals/{deal_id}/notes/{note_id}", 0, 0, NULL},
    [R_NOTE_DELETE] = {"DELETE", "/api/v1/deals/{deal_id}/notes/{note_id}", 0, 0, NULL},
};

struct match {
    const struct so_route *route;
    const char *params[SO_MAX_PATH_PARAMS];
    int param_count;
    char allow[128];
    bool path_known;
};

static struct match route(const char *method, const char *path)
{
    struct match m;
    memset(&m, 0, sizeof m);
    m.param_count = -1;
    memset(m.allow, 'x', sizeof m.allow - 1); /* must be overwritten */
    m.route = router_match(routes, R_COUNT, method, path, m.params, &m.param_count, m.allow, sizeof m.allow,
                           &m.path_known);
    return m;
}

/* The length of a parameter: it points at the segment start and runs to the next '/' or the end. */
static size_t param_len(const char *p)
{
    return strcspn(p, "/");
}

Test(router, literal_path_matches_its_route_without_params)
{
    struct match m = route("GET", "/healthz");
    cr_assert_eq(m.route, &routes[R_HEALTHZ]);
    cr_expect(m.path_known);
    cr_expect_eq(m.param_count, 0);

    m = route("GET", "/api/v1/deals");
    cr_assert_eq(m.route, &routes[R_DEALS_LIST]);
    cr_expect_eq(m.param_count, 0);
}

Test(router, method_selects_among_routes_of_one_path)
{
    cr_expect_eq(route("GET", "/api/v1/deals").route, &routes[R_DEALS_LIST]);
    cr_expect_eq(route("POST", "/api/v1/deals").route, &routes[R_DEALS_CREATE]);
    cr_expect_eq(route("GET", "/api/v1/deals/5").route, &routes[R_DEAL_GET]);
    cr_expect_eq(route("PATCH", "/api/v1/deals/5").route, &routes[R_DEAL_PATCH]);
    cr_expect_eq(route("GET", "/api/v1/deals/5/notes/6").route, &routes[R_NOTE_GET]);
    cr_expect_eq(route("DELETE", "/api/v1/deals/5/notes/6").route, &routes[R_NOTE_DELETE]);
}

Test(router, param_points_into_path_at_segment_start)
{
    const char *path = "/api/v1/deals/42";
    struct match m = route("GET", path);
    cr_assert_eq(m.route, &routes[R_DEAL_GET]);
    cr_assert_eq(m.param_count, 1);
    cr_expect_eq(m.params[0], path + strlen("/api/v1/deals/"));
    cr_expect_eq(param_len(m.params[0]), 2u);
    cr_expect_eq(strncmp(m.params[0], "42", 2), 0);
}

Test(router, param_in_middle_runs_to_next_slash)
{
    const char *path = "/api/v1/deals/ext:D-17/close";
    struct match m = route("POST", path);
    cr_assert_eq(m.route, &routes[R_DEAL_CLOSE]);
    cr_assert_eq(m.param_count, 1);
    cr_expect_eq(m.params[0], path + strlen("/api/v1/deals/"));
    cr_expect_eq(param_len(m.params[0]), strlen("ext:D-17"));
    cr_expect_eq(strncmp(m.params[0], "ext:D-17", param_len(m.params[0])), 0);
}

Test(router, two_params_are_captured_in_order)
{
    const char *path = "/api/v1/deals/7/notes/1900";
    struct match m = route("GET", path);
    cr_assert_eq(m.route, &routes[R_NOTE_GET]);
    cr_assert_eq(m.param_count, 2);
    cr_expect_eq(m.params[0], path + strlen("/api/v1/deals/"));
    cr_expect_eq(param_len(m.params[0]), 1u);
    cr_expect_eq(m.params[0][0], '7');
    cr_expect_eq(m.params[1], path + strlen("/api/v1/deals/7/notes/"));
    cr_expect_str_eq(m.params[1], "1900");
}

Test(router, literal_segment_listed_first_wins_over_param)
{
    struct match m = route("GET", "/api/v1/deals/summary");
    cr_assert_eq(m.route, &routes[R_DEALS_SUMMARY]);
    cr_expect_eq(m.param_count, 0);
}

Test(router, literal_segment_does_not_match_other_text)
{
    /* "summary" is literal; "summary2" is not it and goes to {id}. */
    struct match m = route("GET", "/api/v1/deals/summary2");
    cr_assert_eq(m.route, &routes[R_DEAL_GET]);
    cr_expect_eq(m.param_count, 1);
    cr_expect_str_eq(m.params[0], "summary2");
}

Test(router, known_path_with_other_method_is_405_with_allow)
{
    struct match m = route("DELETE", "/api/v1/deals/42");
    cr_expect_null(m.route);
    cr_expect(m.path_known);
    cr_expect_str_eq(m.allow, "GET, PATCH");

    m = route("PUT", "/api/v1/deals");
    cr_expect_null(m.route);
    cr_expect(m.path_known);
    cr_expect_str_eq(m.allow, "GET, POST");

    m = route("GET", "/api/v1/deals/42/close");
    cr_expect_null(m.route);
    cr_expect(m.path_known);
    cr_expect_str_eq(m.allow, "POST");

    m = route("POST", "/api/v1/deals/1/notes/2");
    cr_expect_null(m.route);
    cr_expect(m.path_known);
    cr_expect_str_eq(m.allow, "GET, DELETE");
}

Test(router, method_is_case_sensitive)
{
    struct match m = route("get", "/healthz");
    cr_expect_null(m.route);
    cr_expect(m.path_known);
    cr_expect_str_eq(m.allow, "GET");
}

Test(router, matched_path_is_known_and_its_allow_list_is_left_empty)
{
    /* the methods are listed only for a 405: a match returns at the first route of its method */
    struct match m = route("PATCH", "/api/v1/deals/9");
    cr_assert_eq(m.route, &routes[R_DEAL_PATCH]);
    cr_expect(m.path_known);
    cr_expect_str_eq(m.allow, "");
}

Test(router, unknown_path_is_not_known)
{
    static const char *const paths[] = {
        "/",
        "",
        "/nope",
        "/api/v1",
        "/api/v1/deal",
        "/api/v1/dealsx",
        "/api/v2/deals",
        "/API/v1/deals",
        "api/v1/deals",
        "/api/v1/deals/1/close/now",
        "/api/v1/deals/1/notes",
        "/healthz/extra",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct match m = route("GET", paths[i]);
        cr_expect_null(m.route, "\"%s\" matched", paths[i]);
        cr_expect_not(m.path_known, "\"%s\" is known", paths[i]);
        cr_expect_str_eq(m.allow, "", "\"%s\": allow \"%s\"", paths[i], m.allow);
    }
}

Test(router, trailing_slash_does_not_match)
{
    static const char *const paths[] = {"/healthz/", "/api/v1/deals/", "/api/v1/deals/42/",
                                        "/api/v1/deals/42/close/", "/api/v1/deals/summary/"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct match m = route("GET", paths[i]);
        cr_expect_null(m.route, "\"%s\" matched", paths[i]);
        cr_expect_not(m.path_known, "\"%s\" is known", paths[i]);
    }
}

Test(router, empty_segment_does_not_match_a_param)
{
    static const char *const paths[] = {"/api/v1/deals//close", "/api/v1/deals//notes/1",
                                        "/api/v1/deals/1/notes/", "/api/v1/deals/1/notes//"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct match m = route(i == 0 ? "POST" : "GET", paths[i]);
        cr_expect_null(m.route, "\"%s\" matched", paths[i]);
        cr_expect_not(m.path_known, "\"%s\" is known", paths[i]);
    }
}

Test(router, double_slash_does_not_match_a_literal)
{
    struct match m = route("GET", "/api//v1/deals");
    cr_expect_null(m.route);
    cr_expect_not(m.path_known);
}

Test(router, allow_is_truncated_to_its_buffer)
{
    const char *params[SO_MAX_PATH_PARAMS];
    int count = 0;
    bool known = false;
    char allow[8];
    memset(allow, 'x', sizeof allow);
    const struct so_route *r = router_match(routes, R_COUNT, "DELETE", "/api/v1/deals/1", params, &count,
                                            allow, sizeof allow, &known);
    cr_expect_null(r);
    cr_expect(known);
    cr_expect_lt(strlen(allow), sizeof allow);
    cr_expect_eq(strncmp(allow, "GET, PATCH", strlen(allow)), 0, "allow \"%s\"", allow);
}

Test(router, zero_length_allow_buffer_is_left_alone)
{
    const char *params[SO_MAX_PATH_PARAMS];
    int count = 0;
    bool known = false;
    char allow[4] = "abc";
    const struct so_route *r =
        router_match(routes, R_COUNT, "DELETE", "/api/v1/deals/1", params, &count, allow, 0, &known);
    cr_expect_null(r);
    cr_expect(known);
    cr_expect_str_eq(allow, "abc");
}

Test(router, empty_table_matches_nothing)
{
    const char *params[SO_MAX_PATH_PARAMS];
    int count = 0;
    bool known = true;
    char allow[16] = "stale";
    cr_expect_null(router_match(routes, 0, "GET", "/healthz", params, &count, allow, sizeof allow, &known));
    cr_expect_not(known);
    cr_expect_str_eq(allow, "");
}
