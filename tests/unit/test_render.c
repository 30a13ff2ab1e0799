/* write_deal (JSON text straight into a buffer, for the hot read paths) must give byte for byte what
 * json_dumps(render_deal()) gives with the server's reply flags: same fields, order, escapes and nulls. */
#include <criterion/criterion.h>
#include <string.h>
#include "../../src/api/common.h"
#include "salesops/buf.h"

#define REPLY_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))

static void assert_same(const struct so_deal *d)
{
    json_t *j = render_deal(d);
    char *expected = json_dumps(j, REPLY_FLAGS);
    json_decref(j);
    struct so_buf b = {0};
    write_deal(&b, d);
    cr_assert(!b.failed);
    cr_assert_str_eq(b.data, expected);
    cr_assert_eq(b.len, strlen(expected));
    free(expected);
    so_buf_free(&b);
}

Test(render, deal_text_equals_jansson_for_plain_and_null_fields)
{
    struct so_deal d = {.id = 7, .external_id = "6101001", .name = "Окна ПВХ", .price = 80000, .pipeline_id = 1,
                        .stage_id = 3, .status = DEAL_OPEN, .manager_id = 2, .loss_reason_id = 0,
                        .created_at = 1795000000, .closed_at = 0, .updated_at = 1795003600};
    assert_same(&d);
    d.external_id = NULL;
    d.manager_id = 0;
    d.status = DEAL_LOST;
    d.loss_reason_id = 4;
    d.closed_at = 1795007200;
    d.price = 0;
    assert_same(&d);
    d.status = DEAL_WON;
    d.id = INT64_MAX;
    d.price = 9007199254740993LL;
    assert_same(&d);
}

Test(render, deal_text_escapes_as_jansson_does)
{
    const char *names[] = {"quote \" and backslash \\", "tab\there\nnew line\r\b\f", "\x01\x1f control",
                           "slash / stays", "emoji 😀 and ё", "", "\x7f del"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct so_deal d = {.id = 1, .external_id = names[i], .name = names[i], .pipeline_id = 1, .stage_id = 1,
                            .created_at = 1, .updated_at = 1};
        assert_same(&d);
    }
}

Test(render, json_strings_and_printf_grow_the_buffer)
{
    struct so_buf b = {0};
    for (int i = 0; i < 2000; i++) {
        so_buf_json_string(&b, "\"x\"");
        so_buf_printf(&b, "%d,", i);
    }
    cr_assert(!b.failed);
    cr_assert_eq(strlen(b.data), b.len);
    cr_assert(strncmp(b.data, "\"\\\"x\\\"\"0,\"\\\"x\\\"\"1,", 18) == 0, "%.40s", b.data);
    cr_assert_str_eq(b.data + b.len - 12, "\"\\\"x\\\"\"1999,");
    so_buf_free(&b);
}
