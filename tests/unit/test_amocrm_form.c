/* The amoCRM webhook form decoder (amocrm.h): the sample bodies of the amoCRM FORMAT.md decode to the trees
 * written here (computed from the bodies independently of this decoder), percent-encoding and UTF-8 are
 * checked, and every malformed body is refused with ERR_MALFORMED and a detail. amo_form_lookup reads one
 * key the same way. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "salesops/amocrm.h"

#include "amocrm_samples.h"

/* ---- helpers ---- */

static json_t *decode_ok(const char *body)
{
    struct so_error err = {0};
    json_t *tree = amo_form_decode(body, strlen(body), &err);
    cr_assert_not_null(tree, "refused %s: %s", body, err.detail);
    return tree;
}

static void expect_tree(const char *body, const char *expected_json)
{
    json_error_t jerr;
    json_t *expected = json_loads(expected_json, 0, &jerr);
    cr_assert_not_null(expected, "bad expected JSON: %s", jerr.text);
    json_t *tree = decode_ok(body);
    char *got = json_dumps(tree, JSON_SORT_KEYS), *want = json_dumps(expected, JSON_SORT_KEYS);
    cr_expect(json_equal(tree, expected), "body %.60s...\n got: %s\nwant: %s", body, got, want);
    free(got);
    free(want);
    json_decref(tree);
    json_decref(expected);
}

static void expect_malformed(const char *body)
{
    struct so_error err = {0};
    json_t *tree = amo_form_decode(body, strlen(body), &err);
    cr_expect_null(tree, "accepted %s", body);
    cr_expect_eq(err.code, ERR_MALFORMED, "%s: code %d", body, (int)err.code);
    cr_expect_neq(err.detail[0], '\0', "%s: no detail", body);
    json_decref(tree);
}

/* Bodies are held by value so that each parameter is self-contained in the test process. */
struct bad_body {
    char body[80];
};

/* ---- The samples ---- */

Test(form_samples, leads_add_decodes_to_its_tree)
{
    expect_tree(
        leads_add,
        "{\"leads\":{\"add\":[{\"id\":\"40310001\",\"name\":\"Заявка с сайта\","
        "\"status_id\":\"55012001\",\"price\":\"150000\",\"responsible_user_id\":\"8800001\","
        "\"last_modified\":\"1662012000\",\"modified_user_id\":\"8800001\",\"created_user_id\":\"8800001\","
        "\"date_create\":\"1662012000\",\"pipeline_id\":\"6101001\",\"account_id\":\"29085511\","
        "\"created_at\":\"1662012000\",\"updated_at\":\"1662012000\",\"custom_fields\":[{\"id\":\"1119321\","
        "\"name\":\"Источник\",\"values\":[{\"value\":\"site\"}]}]}]},"
        "\"account\":{\"subdomain\":\"acme\",\"id\":\"29085511\","
        "\"_links\":{\"self\":\"https://acme.amocrm.ru\"}}}");
}

Test(form_samples, leads_responsible_decodes_to_its_tree)
{
    expect_tree(
        leads_responsible,
        "{\"leads\":{\"responsible\":[{\"id\":\"40310001\",\"name\":\"Заявка с сайта\","
        "\"status_id\":\"55012001\",\"price\":\"150000\",\"responsible_user_id\":\"8800002\","
        "\"last_modified\":\"1662050000\",\"modified_user_id\":\"8800010\",\"created_user_id\":\"8800001\","
        "\"date_create\":\"1662012000\",\"pipeline_id\":\"6101001\",\"account_id\":\"29085511\","
        "\"created_at\":\"1662012000\",\"updated_at\":\"1662050000\",\"old_responsible_user_id\":\"8800001\"}"
        "]},"
        "\"account\":{\"subdomain\":\"acme\",\"id\":\"29085511\","
        "\"_links\":{\"self\":\"https://acme.amocrm.ru\"}}}");
}

Test(form_samples, task_add_decodes_to_its_tree)
{
    expect_tree(
        task_add,
        "{\"task\":{\"add\":[{\"id\":\"7700001\",\"element_id\":\"40310001\",\"element_type\":\"2\","
        "\"task_type\":\"1\",\"date_create\":\"2022-09-01 22:20:00\","
        "\"text\":\"Перезвонить клиенту\",\"status\":\"0\",\"account_id\":\"29085511\","
        "\"created_user_id\":\"8800002\",\"last_modified\":\"2022-09-01 22:20:00\","
        "\"responsible_user_id\":\"8800002\",\"complete_till\":\"2022-09-02 09:00:00\","
        "\"created_at\":\"1662060000\",\"updated_at\":\"1662060000\",\"complete_before\":\"1662098400\"}]},"
        "\"account\":{\"subdomain\":\"acme\",\"id\":\"29085511\","
        "\"_links\":{\"self\":\"https://acme.amocrm.ru\"}}}");
}

Test(form_samples, task_complete_decodes_to_its_tree)
{
    expect_tree(
        task_complete,
        "{\"task\":{\"update\":[{\"id\":\"7700001\",\"element_id\":\"40310001\",\"element_type\":\"2\","
        "\"task_type\":\"1\",\"date_create\":\"2022-09-01 22:20:00\","
        "\"text\":\"Перезвонить клиенту\",\"status\":\"1\",\"account_id\":\"29085511\","
        "\"created_user_id\":\"8800002\",\"last_modified\":\"2022-09-02 06:00:00\","
        "\"responsible_user_id\":\"8800002\",\"complete_till\":\"2022-09-02 09:00:00\","
        "\"created_at\":\"1662060000\",\"updated_at\":\"1662087600\",\"complete_before\":\"1662098400\","
        "\"action_close\":\"1\",\"old_text\":\"Перезвонить клиенту\","
        "\"result\":{\"id\":\"4600307\",\"text\":\"Клиент ждёт КП\"}}]},"
        "\"account\":{\"subdomain\":\"acme\",\"id\":\"29085511\","
        "\"_links\":{\"self\":\"https://acme.amocrm.ru\"}}}");
}

Test(form_samples, leads_status_to_proposal_decodes_to_its_tree)
{
    expect_tree(
        leads_status_to_proposal,
        "{\"leads\":{\"status\":[{\"id\":\"40310001\",\"name\":\"Заявка с сайта\","
        "\"status_id\":\"55012004\",\"price\":\"150000\",\"responsible_user_id\":\"8800002\","
        "\"last_modified\":\"1662098400\",\"modified_user_id\":\"8800002\",\"created_user_id\":\"8800001\","
        "\"date_create\":\"1662012000\",\"pipeline_id\":\"6101001\",\"account_id\":\"29085511\","
        "\"created_at\":\"1662012000\",\"updated_at\":\"1662098400\",\"old_status_id\":\"55012003\"}]},"
        "\"account\":{\"subdomain\":\"acme\",\"id\":\"29085511\","
        "\"_links\":{\"self\":\"https://acme.amocrm.ru\"}}}");
}

Test(form_samples, leads_status_lost_decodes_to_its_tree)
{
    expect_tree(
        leads_status_lost,
        "{\"leads\":{\"status\":[{\"id\":\"40310001\",\"name\":\"Заявка с сайта\","
        "\"status_id\":\"143\",\"price\":\"150000\",\"responsible_user_id\":\"8800002\","
        "\"last_modified\":\"1662184800\",\"modified_user_id\":\"8800002\",\"created_user_id\":\"8800001\","
        "\"date_create\":\"1662012000\",\"pipeline_id\":\"6101001\",\"account_id\":\"29085511\","
        "\"created_at\":\"1662012000\",\"updated_at\":\"1662184800\",\"old_status_id\":\"55012004\"}]},"
        "\"account\":{\"subdomain\":\"acme\",\"id\":\"29085511\","
        "\"_links\":{\"self\":\"https://acme.amocrm.ru\"}}}");
}

Test(form_samples, two_leads_two_actions_decodes_to_its_tree)
{
    expect_tree(
        two_leads_two_actions,
        "{\"leads\":{\"add\":[{\"id\":\"40310002\",\"name\":\"Звонок\",\"status_id\":\"55012001\","
        "\"price\":\"150000\",\"responsible_user_id\":\"8800001\",\"last_modified\":\"1662013000\","
        "\"modified_user_id\":\"8800001\",\"created_user_id\":\"8800001\",\"date_create\":\"1662013000\","
        "\"pipeline_id\":\"6101001\",\"account_id\":\"29085511\",\"created_at\":\"1662013000\","
        "\"updated_at\":\"1662013000\"},{\"id\":\"40310003\",\"name\":\"Чат\",\"status_id\":\"55012001\","
        "\"price\":\"150000\",\"responsible_user_id\":\"8800001\",\"last_modified\":\"1662014000\","
        "\"modified_user_id\":\"8800001\",\"created_user_id\":\"8800001\",\"date_create\":\"1662014000\","
        "\"pipeline_id\":\"6101001\",\"account_id\":\"29085511\",\"created_at\":\"1662014000\","
        "\"updated_at\":\"1662014000\"}],\"update\":[{\"id\":\"40310002\",\"name\":\"Звонок\","
        "\"status_id\":\"55012001\",\"price\":\"175000\",\"responsible_user_id\":\"8800001\","
        "\"last_modified\":\"1662015000\",\"modified_user_id\":\"8800001\",\"created_user_id\":\"8800001\","
        "\"date_create\":\"1662013000\",\"pipeline_id\":\"6101001\",\"account_id\":\"29085511\","
        "\"created_at\":\"1662013000\",\"updated_at\":\"1662015000\"}]},\"account\":{\"subdomain\":\"acme\","
        "\"id\":\"29085511\",\"_links\":{\"self\":\"https://acme.amocrm.ru\"}}}");
}

Test(form_samples, every_sample_names_its_subdomain)
{
    const char *samples[] = {
        leads_add,         leads_responsible,    task_add, task_complete, leads_status_to_proposal,
        leads_status_lost, two_leads_two_actions};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        char out[64] = "";
        cr_expect_eq(amo_form_lookup(samples[i], strlen(samples[i]), "account[subdomain]", out, sizeof out),
                     1, "sample %zu", i);
        cr_expect_str_eq(out, "acme", "sample %zu", i);
    }
}

/* ---- Decoding ---- */

Test(form_decode, plus_is_a_space_and_percent_2B_a_plus)
{
    expect_tree("q=a+b%2Bc+&my+key=%20", "{\"q\": \"a b+c \", \"my key\": \" \"}");
}

Test(form_decode, percent_escapes_in_either_case_and_raw_brackets)
{
    expect_tree("a%5bb%5D=%d0%97%D0%b0&c[d]=x", "{\"a\": {\"b\": \"За\"}, \"c\": {\"d\": \"x\"}}");
}

Test(form_decode, encoded_separators_are_data)
{
    expect_tree("a=x=y&b=%26&c=%3D%25", "{\"a\": \"x=y\", \"b\": \"&\", \"c\": \"=%\"}");
}

Test(form_decode, a_key_without_value_is_empty)
{
    expect_tree("a&b=&c[d]", "{\"a\": \"\", \"b\": \"\", \"c\": {\"d\": \"\"}}");
}

Test(form_decode, empty_pairs_are_skipped)
{
    expect_tree("&&a=1&&b=2&", "{\"a\": \"1\", \"b\": \"2\"}");
    expect_tree("", "{}");
    expect_tree("&", "{}");
    struct so_error err = {0};
    json_t *tree = amo_form_decode(NULL, 0, &err);
    cr_assert(json_is_object(tree) && json_object_size(tree) == 0);
    json_decref(tree);
}

Test(form_decode, keys_keep_the_order_of_the_body)
{
    /* the mapper emits events in the body's order of entities and actions */
    json_t *tree = decode_ok("task[add][0][id]=1&leads[status][0][id]=2&leads[add][0][id]=3&account[id]=4");
    const char *want[] = {"task", "leads", "account"}, *key;
    json_t *value;
    size_t i = 0;
    json_object_foreach(tree, key, value)
    {
        cr_assert_lt(i, 3);
        cr_expect_str_eq(key, want[i]);
        i++;
    }
    json_t *leads = json_object_get(tree, "leads");
    const char *first = NULL;
    json_object_foreach(leads, key, value)
    {
        first = key;
        break;
    }
    cr_expect_str_eq(first, "status");
    json_decref(tree);
}

Test(form_decode, a_body_is_bounded_only_by_its_length)
{
    /* not NUL-terminated where the length ends */
    const char body[] = "a=1&b=2";
    struct so_error err = {0};
    json_t *tree = amo_form_decode(body, 3, &err);
    cr_assert_not_null(tree, "%s", err.detail);
    cr_expect_str_eq(json_string_value(json_object_get(tree, "a")), "1");
    cr_expect_eq(json_object_size(tree), 1);
    json_decref(tree);
}

/* ---- Arrays ---- */

Test(form_arrays, are_in_index_order_even_when_sent_out_of_order)
{
    expect_tree("x[2]=c&x[0]=a&x[10]=k&x[1]=b", "{\"x\": [\"a\", \"b\", \"c\", \"k\"]}");
}

Test(form_arrays, nested_entities_are_in_index_order)
{
    expect_tree("leads[add][1][id]=2&leads[add][0][id]=1&leads[add][1][tags][1][name]=b&"
                "leads[add][1][tags][0][name]=a",
                "{\"leads\": {\"add\": [{\"id\": \"1\"}, {\"id\": \"2\", \"tags\": [{\"name\": \"a\"}, "
                "{\"name\": \"b\"}]}]}}");
}

Test(form_arrays, gaps_close_up)
{
    expect_tree("x[5]=b&x[3]=a", "{\"x\": [\"a\", \"b\"]}");
}

Test(form_arrays, a_level_with_any_other_key_stays_an_object)
{
    expect_tree("x[0]=a&x[b]=c", "{\"x\": {\"0\": \"a\", \"b\": \"c\"}}");
    expect_tree("x[1234567]=a", "{\"x\": {\"1234567\": \"a\"}}"); /* over 6 digits is not an index */
    expect_tree("x[-1]=a", "{\"x\": {\"-1\": \"a\"}}");
}

Test(form_arrays, a_top_level_of_indexes_is_an_array)
{
    /* amo_map_webhook refuses it: a body must be an object */
    expect_tree("1=b&0=a", "[\"a\", \"b\"]");
}

/* ---- Refused bodies ---- */

ParameterizedTestParameters(form_refuses, invalid_percent_encoding)
{
    static struct bad_body cases[] = {
        {"a=%"},  {"a=%4"},  {"a=%4G"},   {"a=%G4"},  {"a=1%2"}, {"a=1%"},
        {"a%=1"}, {"%zz=1"}, {"a[%5]=1"}, {"a=%%41"}, {"a=%+1"}, {"a=x&b=%-1"},
    };
    return cr_make_param_array(struct bad_body, cases, sizeof cases / sizeof cases[0]);
}
ParameterizedTest(struct bad_body *c, form_refuses, invalid_percent_encoding)
{
    expect_malformed(c->body);
}

ParameterizedTestParameters(form_refuses, invalid_utf8)
{
    static struct bad_body cases[] = {
        {"a=%C0%80"},             /* overlong NUL */
        {"a=%C1%BF"},             /* overlong U+007F */
        {"a=%E0%80%AF"},          /* overlong '/' in 3 bytes */
        {"a=%E0%9F%BF"},          /* overlong U+07FF */
        {"a=%F0%80%80%AF"},       /* overlong '/' in 4 bytes */
        {"a=%F0%8F%BF%BF"},       /* overlong U+FFFF */
        {"a=%ED%A0%80"},          /* U+D800, a surrogate */
        {"a=%ED%BF%BF"},          /* U+DFFF */
        {"a=%ED%A0%BD%ED%B8%80"}, /* a surrogate pair, CESU-8 */
        {"a=%D0"},                /* truncated at the end */
        {"a=%D0&b=1"},            /* truncated before the next field */
        {"a=%D0x"},               /* a lead byte then ASCII */
        {"a=%E2%82"},             /* 2 of 3 */
        {"a=%F0%9F%98"},          /* 3 of 4 */
        {"a=%80"},                /* a lone continuation byte */
        {"a=%BF%BF"},
        {"a=%FF"},
        {"a=%FE"},
        {"a=%F8%88%80%80%80"}, /* 5-byte form */
        {"a=%F4%90%80%80"},    /* above U+10FFFF */
        {"a=%F5%80%80%80"},
        {"a=%00"}, /* NUL */
        {"a=x%00y"},
        {"%C0%80=1"}, /* the same in keys */
        {"a[%ED%A0%80]=1"},
        {"a%D0=1"},
        {"a[b%00]=1"},
    };
    return cr_make_param_array(struct bad_body, cases, sizeof cases / sizeof cases[0]);
}
ParameterizedTest(struct bad_body *c, form_refuses, invalid_utf8)
{
    expect_malformed(c->body);
}

Test(form_decode, accepts_utf8_at_every_boundary)
{
    expect_tree("a=%7F&b=%C2%80&c=%DF%BF&d=%E0%A0%80&e=%ED%9F%BF&f=%EE%80%80&g=%EF%BF%BF&h=%F0%90%80%80&"
                "i=%F4%8F%BF%BF&j=%F0%9F%98%80",
                "{\"a\": \"\\u007f\", \"b\": \"\\u0080\", \"c\": \"\\u07ff\", \"d\": \"\\u0800\", "
                "\"e\": \"\\ud7ff\", \"f\": \"\\ue000\", \"g\": \"\\uffff\", \"h\": \"\\ud800\\udc00\", "
                "\"i\": \"\\udbff\\udfff\", \"j\": \"\\ud83d\\ude00\"}");
}

ParameterizedTestParameters(form_refuses, malformed_or_empty_keys)
{
    static struct bad_body cases[] = {
        {"=1"},       {"="},     {"a=1&=2"},  {"[a]=1"},   {"%5Ba%5D=1"}, {"a[]=1"},   {"a[b][]=1"},
        {"a[][b]=1"}, {"a[b=1"}, {"a[b]c=1"}, {"a[b]]=1"}, {"a[[b]]=1"},  {"a[b][=1"}, {"a[b] [c]=1"},
    };
    return cr_make_param_array(struct bad_body, cases, sizeof cases / sizeof cases[0]);
}
ParameterizedTest(struct bad_body *c, form_refuses, malformed_or_empty_keys)
{
    expect_malformed(c->body);
}

ParameterizedTestParameters(form_refuses, a_key_that_is_both_a_value_and_a_group)
{
    static struct bad_body cases[] = {
        {"a=1&a[b]=2"},
        {"a[b]=2&a=1"},
        {"a[b][c]=1&a[b]=2"},
        {"a[b]=2&a[b][c]=1"},
        {"leads[add][0][id]=1&leads[add][0]=x"},
        {"leads[add]=x&leads[add][0][id]=1"},
    };
    return cr_make_param_array(struct bad_body, cases, sizeof cases / sizeof cases[0]);
}
ParameterizedTest(struct bad_body *c, form_refuses, a_key_that_is_both_a_value_and_a_group)
{
    expect_malformed(c->body);
}

ParameterizedTestParameters(form_refuses, a_repeated_key)
{
    /* amo_form_lookup (the subdomain check) and the decoder must never read two values from one body */
    static struct bad_body cases[] = {
        {"a=1&a=2"},
        {"a=1&a=1"},
        {"a[0]=x&a[0]=y"},
        {"account[subdomain]=acme&account[subdomain]=evil"},
        {"account%5Bsubdomain%5D=acme&account[subdomain]=evil"},
    };
    return cr_make_param_array(struct bad_body, cases, sizeof cases / sizeof cases[0]);
}
ParameterizedTest(struct bad_body *c, form_refuses, a_repeated_key)
{
    expect_malformed(c->body);
}

/* "a[1][2]...[n]=v" */
static char *nested_key(int levels)
{
    char *body = malloc((size_t)levels * 8 + 8);
    cr_assert_not_null(body);
    char *p = body + sprintf(body, "a");
    for (int i = 1; i <= levels; i++)
        p += sprintf(p, "[k%d]", i);
    sprintf(p, "=v");
    return body;
}

Test(form_depth, keys_nested_as_deep_as_the_limit_decode)
{
    char *body = nested_key(AMO_FORM_MAX_DEPTH);
    json_t *tree = decode_ok(body), *node = json_object_get(tree, "a");
    for (int i = 1; i <= AMO_FORM_MAX_DEPTH; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        node = json_object_get(node, key);
    }
    cr_expect_str_eq(json_string_value(node), "v");
    json_decref(tree);
    free(body);
}

Test(form_depth, keys_nested_deeper_than_the_limit_are_refused)
{
    for (int levels = AMO_FORM_MAX_DEPTH + 1; levels <= AMO_FORM_MAX_DEPTH + 3; levels++) {
        char *body = nested_key(levels);
        expect_malformed(body);
        free(body);
    }
}

static char *many_fields(int count)
{
    char *body = malloc((size_t)count * 12 + 1), *p = body;
    cr_assert_not_null(body);
    for (int i = 0; i < count; i++)
        p += sprintf(p, "%sf%d=1", i ? "&" : "", i);
    return body;
}

Test(form_limits, as_many_fields_as_the_limit_decode)
{
    char *body = many_fields(AMO_FORM_MAX_PAIRS);
    json_t *tree = decode_ok(body);
    cr_expect_eq(json_object_size(tree), AMO_FORM_MAX_PAIRS);
    json_decref(tree);
    free(body);
}

Test(form_limits, more_fields_than_the_limit_are_refused)
{
    char *body = many_fields(AMO_FORM_MAX_PAIRS + 1);
    expect_malformed(body);
    free(body);
}

/* ---- amo_form_lookup ---- */

static int lookup(const char *body, const char *key, char *out, size_t outlen)
{
    return amo_form_lookup(body, strlen(body), key, out, outlen);
}

Test(form_lookup, finds_an_encoded_or_a_raw_key)
{
    char out[32] = "";
    cr_expect_eq(lookup("x=1&account%5Bsubdomain%5D=acme&y=2", "account[subdomain]", out, sizeof out), 1);
    cr_expect_str_eq(out, "acme");
    cr_expect_eq(lookup("account[subdomain]=acme", "account[subdomain]", out, sizeof out), 1);
    cr_expect_str_eq(out, "acme");
}

Test(form_lookup, decodes_the_value)
{
    char out[32] = "";
    cr_expect_eq(lookup("account[subdomain]=my+co%2Dx%D0%97", "account[subdomain]", out, sizeof out), 1);
    cr_expect_str_eq(out, "my co-xЗ");
}

Test(form_lookup, absent_keys_and_other_keys_are_not_found)
{
    char out[32] = "";
    cr_expect_eq(lookup("account[id]=1", "account[subdomain]", out, sizeof out), 0);
    cr_expect_eq(lookup("account[subdomain]=acme", "account[sub]", out, sizeof out), 0);
    cr_expect_eq(lookup("account[subdomain]=acme", "account", out, sizeof out), 0);
    cr_expect_eq(lookup("account[subdomain]x=acme", "account[subdomain]", out, sizeof out), 0);
    cr_expect_eq(lookup("", "account[subdomain]", out, sizeof out), 0);
    cr_expect_eq(lookup("&&", "account[subdomain]", out, sizeof out), 0);
    cr_expect_eq(amo_form_lookup(NULL, 0, "account[subdomain]", out, sizeof out), 0);
}

Test(form_lookup, a_key_without_value_is_empty_as_in_the_decoder)
{
    char out[32] = "x";
    cr_expect_eq(lookup("a=1&account[subdomain]&b=2", "account[subdomain]", out, sizeof out), 1);
    cr_expect_str_eq(out, "");
}

Test(form_lookup, a_value_that_does_not_fit_is_an_error)
{
    char out[5] = "";
    cr_expect_eq(lookup("account[subdomain]=acme", "account[subdomain]", out, sizeof out), 1); /* exact fit */
    cr_expect_str_eq(out, "acme");
    cr_expect_eq(lookup("account[subdomain]=acmes", "account[subdomain]", out, sizeof out), -1);
}

Test(form_lookup, an_undecodable_value_is_an_error)
{
    char out[32] = "";
    cr_expect_eq(lookup("account[subdomain]=ac%zz", "account[subdomain]", out, sizeof out), -1);
    cr_expect_eq(lookup("account[subdomain]=ac%", "account[subdomain]", out, sizeof out), -1);
    cr_expect_eq(lookup("account[subdomain]=%C0%80", "account[subdomain]", out, sizeof out), -1);
    cr_expect_eq(lookup("account[subdomain]=%ED%A0%80", "account[subdomain]", out, sizeof out), -1);
    cr_expect_eq(lookup("account[subdomain]=a%00b", "account[subdomain]", out, sizeof out), -1);
}

Test(form_lookup, a_repeated_key_is_an_error_as_in_the_decoder)
{
    char out[32] = "";
    cr_expect_eq(
        lookup("account[subdomain]=acme&account%5Bsubdomain%5D=evil", "account[subdomain]", out, sizeof out),
        -1);
    cr_expect_eq(
        lookup("account[subdomain]=acme&account[subdomain]=acme", "account[subdomain]", out, sizeof out), -1);
}

Test(form_lookup, reads_only_within_the_length)
{
    const char body[] = "account[subdomain]=acme&account[subdomain]=evil";
    char out[32] = "";
    cr_expect_eq(amo_form_lookup(body, 23, "account[subdomain]", out, sizeof out), 1);
    cr_expect_str_eq(out, "acme");
    cr_expect_eq(amo_form_lookup(body, 21, "account[subdomain]", out, sizeof out), 1);
    cr_expect_str_eq(out, "ac");
}
