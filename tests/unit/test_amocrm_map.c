/* amoCRM webhook bodies to salesops events (amocrm_map.h), per API.md "Events" and "amoCRM": the sample
 * bodies of the amoCRM FORMAT.md tell one story (lead 40310001 added for 8800001, given to 8800002 by
 * 8800010, a call task added and completed, moved to 55012004, lost), and each maps to exactly the events
 * written here; `at` values were computed from the samples' unix fields with `date -u -d @<seconds>`.
 * Hand-written bodies cover notes, ignored and unknown entities, bad ids, times and order. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "salesops/amocrm.h"
#include "salesops/amocrm_map.h"

#include "amocrm_samples.h"

/* ---- helpers ---- */

#define PREFIX "wh:7"
/* 2022-09-03T10:13:20Z: the time the service received the body */
#define RECEIVED    1662200000
#define RECEIVED_AT "2022-09-03T10:13:20Z"

struct counts {
    int ignored, unknown;
};

static json_t *map_body(const char *body, struct amo_map_stats *stats)
{
    struct so_error err = {0};
    json_t *form = amo_form_decode(body, strlen(body), &err);
    cr_assert_not_null(form, "decode: %s", err.detail);
    json_t *events = amo_map_webhook(form, RECEIVED, PREFIX, stats, &err);
    json_decref(form);
    cr_assert_not_null(events, "map: %s", err.detail);
    cr_assert(json_is_array(events));
    return events;
}

/* The expected events are written with ' for " to stay readable. */
static void expect_events(const char *body, const char *expected_json, struct counts want)
{
    char *text = strdup(expected_json);
    cr_assert_not_null(text);
    for (char *p = text; *p; p++)
        if (*p == '\'') *p = '"';
    json_error_t jerr;
    json_t *expected = json_loads(text, 0, &jerr);
    cr_assert_not_null(expected, "bad expected JSON at %d: %s", jerr.position, jerr.text);
    struct amo_map_stats stats = {-1, -1, -1};
    json_t *events = map_body(body, &stats);
    char *got = json_dumps(events, JSON_INDENT(1)), *exp = json_dumps(expected, JSON_INDENT(1));
    cr_expect(json_equal(events, expected), "body %.70s...\ngot:\n%s\nwant:\n%s", body, got, exp);
    cr_expect_eq(stats.events, (int)json_array_size(events), "events counted %d", stats.events);
    cr_expect_eq(stats.ignored, want.ignored, "ignored %d, want %d", stats.ignored, want.ignored);
    cr_expect_eq(stats.unknown, want.unknown, "unknown %d, want %d", stats.unknown, want.unknown);
    free(got);
    free(exp);
    free(text);
    json_decref(events);
    json_decref(expected);
}

static const struct counts none = {0, 0};

/* ---- The samples: FORMAT.md's story ---- */

Test(map_samples, leads_add_creates_the_deal)
{
    expect_events(leads_add,
                  "[{'id': 'wh:7:0', 'type': 'deal.created', 'at': '2022-09-01T06:00:00Z', 'data': {"
                  "'deal': '40310001', 'name': 'Заявка с сайта', 'price': 150000, 'pipeline': '6101001',"
                  "'stage': '55012001', 'manager': '8800001', 'actor': '8800001'}}]",
                  none);
}

Test(map_samples, leads_responsible_gives_the_deal_to_8800002_by_the_head_of_sales)
{
    expect_events(leads_responsible,
                  "[{'id': 'wh:7:0', 'type': 'deal.responsible_changed', 'at': '2022-09-01T16:33:20Z',"
                  "'data': {'deal': '40310001', 'manager': '8800002', 'actor': '8800010'}}]",
                  none);
}

Test(map_samples, task_add_creates_a_call_task_due_at_complete_before)
{
    /* updated_at 1662060000; last_modified "2022-09-01 22:20:00" is not unix time and is not read */
    expect_events(task_add,
                  "[{'id': 'wh:7:0', 'type': 'task.created', 'at': '2022-09-01T19:20:00Z', 'data': {"
                  "'task': '7700001', 'deal': '40310001', 'manager': '8800002', 'type': 'call',"
                  "'text': 'Перезвонить клиенту', 'due_at': '2022-09-02T06:00:00Z', 'actor': '8800002'}}]",
                  none);
}

Test(map_samples, task_complete_updates_then_completes_the_task_with_its_result)
{
    expect_events(task_complete,
                  "[{'id': 'wh:7:0', 'type': 'task.updated', 'at': '2022-09-02T03:00:00Z', 'data': {"
                  "'task': '7700001', 'manager': '8800002', 'due_at': '2022-09-02T06:00:00Z',"
                  "'text': 'Перезвонить клиенту', 'actor': '8800002'}},"
                  "{'id': 'wh:7:1', 'type': 'task.completed', 'at': '2022-09-02T03:00:00Z', 'data': {"
                  "'task': '7700001', 'result': 'Клиент ждёт КП', 'actor': '8800002'}}]",
                  none);
}

Test(map_samples, leads_status_to_proposal_moves_the_stage)
{
    expect_events(leads_status_to_proposal,
                  "[{'id': 'wh:7:0', 'type': 'deal.stage_changed', 'at': '2022-09-02T06:00:00Z', 'data': {"
                  "'deal': '40310001', 'pipeline': '6101001', 'stage': '55012004', 'actor': '8800002'}}]",
                  none);
}

Test(map_samples, leads_status_lost_keeps_143_for_the_domain)
{
    expect_events(leads_status_lost,
                  "[{'id': 'wh:7:0', 'type': 'deal.stage_changed', 'at': '2022-09-03T06:00:00Z', 'data': {"
                  "'deal': '40310001', 'pipeline': '6101001', 'stage': '143', 'actor': '8800002'}}]",
                  none);
}

Test(map_samples, two_leads_two_actions_adds_both_then_updates_one)
{
    expect_events(two_leads_two_actions,
                  "[{'id': 'wh:7:0', 'type': 'deal.created', 'at': '2022-09-01T06:16:40Z', 'data': {"
                  "'deal': '40310002', 'name': 'Звонок', 'price': 150000, 'pipeline': '6101001',"
                  "'stage': '55012001', 'manager': '8800001', 'actor': '8800001'}},"
                  "{'id': 'wh:7:1', 'type': 'deal.created', 'at': '2022-09-01T06:33:20Z', 'data': {"
                  "'deal': '40310003', 'name': 'Чат', 'price': 150000, 'pipeline': '6101001',"
                  "'stage': '55012001', 'manager': '8800001', 'actor': '8800001'}},"
                  "{'id': 'wh:7:2', 'type': 'deal.updated', 'at': '2022-09-01T06:50:00Z', 'data': {"
                  "'deal': '40310002', 'name': 'Звонок', 'price': 175000, 'stage': '55012001',"
                  "'pipeline': '6101001', 'manager': '8800001', 'if_changed': true, 'actor': '8800001'}}]",
                  none);
}

Test(map_samples, the_story_is_in_time_order)
{
    const char *story[] = {leads_add,     leads_responsible,        task_add,
                           task_complete, leads_status_to_proposal, leads_status_lost};
    char previous[32] = "";
    for (size_t i = 0; i < sizeof story / sizeof story[0]; i++) {
        json_t *events = map_body(story[i], NULL);
        size_t k;
        json_t *event;
        json_array_foreach(events, k, event)
        {
            const char *at = json_string_value(json_object_get(event, "at"));
            cr_expect_geq(strcmp(at, previous), 0, "sample %zu: %s before %s", i, at, previous);
            snprintf(previous, sizeof previous, "%s", at);
        }
        json_decref(events);
    }
}

Test(map_samples, the_same_body_maps_to_the_same_events)
{
    json_t *first = map_body(two_leads_two_actions, NULL), *again = map_body(two_leads_two_actions, NULL);
    cr_expect(json_equal(first, again));
    json_decref(first);
    json_decref(again);
}

/* ---- Leads ---- */

Test(map_leads, delete_and_restore_carry_the_deal)
{
    expect_events("leads[delete][0][id]=40310003&leads[delete][0][status_id]=55012001&"
                  "leads[restore][0][id]=40310002&leads[restore][0][updated_at]=1662100000&"
                  "leads[restore][0][modified_user_id]=8800010&account[subdomain]=acme",
                  "[{'id': 'wh:7:0', 'type': 'deal.deleted', 'at': '" RECEIVED_AT "', 'data': {"
                  "'deal': '40310003'}},"
                  "{'id': 'wh:7:1', 'type': 'deal.restored', 'at': '2022-09-02T06:26:40Z', 'data': {"
                  "'deal': '40310002', 'actor': '8800010'}}]",
                  none);
}

Test(map_leads, status_142_stays_142)
{
    expect_events("leads[status][0][id]=40310001&leads[status][0][status_id]=142&"
                  "leads[status][0][pipeline_id]=6101001&leads[status][0][old_status_id]=55012005&"
                  "leads[status][0][updated_at]=1662100000",
                  "[{'id': 'wh:7:0', 'type': 'deal.stage_changed', 'at': '2022-09-02T06:26:40Z', 'data': {"
                  "'deal': '40310001', 'pipeline': '6101001', 'stage': '142'}}]",
                  none);
}

Test(map_leads, the_short_digital_pipeline_body_moves_the_stage_at_receipt)
{
    expect_events("leads[status][0][id]=40310001&leads[status][0][status_id]=55012005&"
                  "leads[status][0][pipeline_id]=6101001&leads[status][0][old_status_id]=55012004&"
                  "leads[status][0][old_pipeline_id]=6101001&account[id]=29085511&account[subdomain]=acme",
                  "[{'id': 'wh:7:0', 'type': 'deal.stage_changed', 'at': '" RECEIVED_AT "', 'data': {"
                  "'deal': '40310001', 'pipeline': '6101001', 'stage': '55012005'}}]",
                  none);
}

Test(map_leads, an_empty_or_missing_price_is_0_on_creation)
{
    expect_events(
        "leads[add][0][id]=1&leads[add][0][name]=A&leads[add][0][price]=&leads[add][0][pipeline_id]=5&"
        "leads[add][1][id]=2&leads[add][1][name]=B&leads[add][1][pipeline_id]=5",
        "[{'id': 'wh:7:0', 'type': 'deal.created', 'at': '" RECEIVED_AT "', 'data': {"
        "'deal': '1', 'name': 'A', 'price': 0, 'pipeline': '5'}},"
        "{'id': 'wh:7:1', 'type': 'deal.created', 'at': '" RECEIVED_AT "', 'data': {"
        "'deal': '2', 'name': 'B', 'price': 0, 'pipeline': '5'}}]",
        none);
}

Test(map_leads, a_lead_without_a_name_is_created_as_hash_id)
{
    /* deal.created needs a name; an update does not blank one */
    expect_events("leads[add][0][id]=1&leads[add][0][name]=&leads[add][0][pipeline_id]=5&"
                  "leads[add][1][id]=2&leads[add][1][pipeline_id]=5&"
                  "leads[update][0][id]=1&leads[update][0][name]=&leads[update][0][price]=7",
                  "[{'id': 'wh:7:0', 'type': 'deal.created', 'at': '" RECEIVED_AT "', 'data': {"
                  "'deal': '1', 'name': '#1', 'price': 0, 'pipeline': '5'}},"
                  "{'id': 'wh:7:1', 'type': 'deal.created', 'at': '" RECEIVED_AT "', 'data': {"
                  "'deal': '2', 'name': '#2', 'price': 0, 'pipeline': '5'}},"
                  "{'id': 'wh:7:2', 'type': 'deal.updated', 'at': '" RECEIVED_AT "', 'data': {"
                  "'deal': '1', 'price': 7}}]",
                  none);
}

Test(map_leads, an_update_names_only_what_it_carries)
{
    /* an empty price is 0; no price, no name, no stage: only the deal */
    expect_events("leads[update][0][id]=1&leads[update][0][price]=&leads[update][1][id]=2",
                  "[{'id': 'wh:7:0', 'type': 'deal.updated', 'at': '" RECEIVED_AT "', 'data': {"
                  "'deal': '1', 'price': 0}},"
                  "{'id': 'wh:7:1', 'type': 'deal.updated', 'at': '" RECEIVED_AT "', 'data': {"
                  "'deal': '2'}}]",
                  none);
}

Test(map_leads, an_update_with_only_the_responsible_applies_it_if_changed)
{
    expect_events("leads[update][0][id]=1&leads[update][0][responsible_user_id]=8800003",
                  "[{'id': 'wh:7:0', 'type': 'deal.updated', 'at': '" RECEIVED_AT "', 'data': {"
                  "'deal': '1', 'manager': '8800003', 'if_changed': true}}]",
                  none);
}

Test(map_leads, ids_lose_leading_zeros_and_0_means_none)
{
    /* modified_user_id 0: amoCRM itself (a robot) made the change: no actor */
    expect_events("leads[responsible][0][id]=0040310001&leads[responsible][0][responsible_user_id]=08800002&"
                  "leads[responsible][0][modified_user_id]=0",
                  "[{'id': 'wh:7:0', 'type': 'deal.responsible_changed', 'at': '" RECEIVED_AT "', 'data': {"
                  "'deal': '40310001', 'manager': '8800002'}}]",
                  none);
}

/* ---- Event time ---- */

Test(map_time, updated_at_then_last_modified_then_created_at_then_receipt)
{
    expect_events(
        "leads[status][0][id]=1&leads[status][0][status_id]=2&leads[status][0][updated_at]=1662100000&"
        "leads[status][0][last_modified]=1662110000&leads[status][0][created_at]=1662120000&"
        "leads[status][1][id]=1&leads[status][1][status_id]=3&leads[status][1][last_modified]=1662110000&"
        "leads[status][1][created_at]=1662120000&"
        "leads[status][2][id]=1&leads[status][2][status_id]=4&leads[status][2][created_at]=1662120000&"
        "leads[status][3][id]=1&leads[status][3][status_id]=5",
        "[{'id': 'wh:7:0', 'type': 'deal.stage_changed', 'at': '2022-09-02T06:26:40Z', 'data': {"
        "'deal': '1', 'stage': '2'}},"
        "{'id': 'wh:7:1', 'type': 'deal.stage_changed', 'at': '2022-09-02T09:13:20Z', 'data': {"
        "'deal': '1', 'stage': '3'}},"
        "{'id': 'wh:7:2', 'type': 'deal.stage_changed', 'at': '2022-09-02T12:00:00Z', 'data': {"
        "'deal': '1', 'stage': '4'}},"
        "{'id': 'wh:7:3', 'type': 'deal.stage_changed', 'at': '" RECEIVED_AT "', 'data': {"
        "'deal': '1', 'stage': '5'}}]",
        none);
}

Test(map_time, only_unix_seconds_are_read)
{
    /* "2022-09-01 22:20:00" is in the account's zone; 0, negative, fractional, too large: not times */
    expect_events("leads[status][0][id]=1&leads[status][0][status_id]=2&"
                  "leads[status][0][updated_at]=2022-09-02+09%3A00%3A00&leads[status][0][last_modified]=0&"
                  "leads[status][0][created_at]=1662120000&"
                  "leads[status][1][id]=1&leads[status][1][status_id]=3&leads[status][1][updated_at]=-5&"
                  "leads[status][1][last_modified]=1662110000.5&leads[status][1][created_at]=99999999999999&"
                  "leads[status][2][id]=1&leads[status][2][status_id]=4&leads[status][2][updated_at]=&"
                  "leads[status][2][last_modified]=+1662110000",
                  "[{'id': 'wh:7:0', 'type': 'deal.stage_changed', 'at': '2022-09-02T12:00:00Z', 'data': {"
                  "'deal': '1', 'stage': '2'}},"
                  "{'id': 'wh:7:1', 'type': 'deal.stage_changed', 'at': '" RECEIVED_AT "', 'data': {"
                  "'deal': '1', 'stage': '3'}},"
                  "{'id': 'wh:7:2', 'type': 'deal.stage_changed', 'at': '" RECEIVED_AT "', 'data': {"
                  "'deal': '1', 'stage': '4'}}]",
                  none);
}

/* ---- Notes ---- */

Test(map_notes, an_outgoing_call_with_params_is_a_complete_call)
{
    expect_events("leads[note][0][note][id]=9900001&leads[note][0][note][element_id]=40310001&"
                  "leads[note][0][note][element_type]=2&leads[note][0][note][note_type]=11&"
                  "leads[note][0][note][created_by]=8800002&leads[note][0][note][created_at]=1662090000&"
                  "leads[note][0][note][updated_at]=1662095000&leads[note][0][note][params][uniq]=a1b2&"
                  "leads[note][0][note][params][duration]=125&leads[note][0][note][params][call_status]=4&"
                  "leads[note][0][note][params][phone]=%2B79990000000&account[subdomain]=acme",
                  "[{'id': 'wh:7:0', 'type': 'call.logged', 'at': '2022-09-02T03:40:00Z', 'data': {"
                  "'call': '9900001', 'manager': '8800002', 'deal': '40310001', 'direction': 'out',"
                  "'duration_s': 125, 'answered': true}}]",
                  none);
}

Test(map_notes, an_incoming_call_without_params_waits_for_its_details)
{
    /* no inner [note] level; the call starts at created_at, not updated_at */
    expect_events(
        "leads[note][0][id]=9900002&leads[note][0][element_id]=40310001&leads[note][0][element_type]=2&"
        "leads[note][0][note_type]=10&leads[note][0][created_by]=8800002&"
        "leads[note][0][created_at]=1662091000&leads[note][0][updated_at]=1662095000",
        "[{'id': 'wh:7:0', 'type': 'call.logged', 'at': '2022-09-02T03:56:40Z', 'data': {"
        "'call': '9900002', 'manager': '8800002', 'deal': '40310001', 'direction': 'in',"
        "'duration_s': 0, 'answered': false, 'details_pending': true}}]",
        none);
}

Test(map_notes, a_call_without_a_conversation_is_unanswered)
{
    expect_events("leads[note][0][note][id]=9900003&leads[note][0][note][element_id]=40310001&"
                  "leads[note][0][note][note_type]=11&leads[note][0][note][created_by]=8800002&"
                  "leads[note][0][note][created_at]=1662091000&leads[note][0][note][params][duration]=0&"
                  "leads[note][0][note][params][call_status]=6",
                  "[{'id': 'wh:7:0', 'type': 'call.logged', 'at': '2022-09-02T03:56:40Z', 'data': {"
                  "'call': '9900003', 'manager': '8800002', 'deal': '40310001', 'direction': 'out',"
                  "'duration_s': 0, 'answered': false}}]",
                  none);
}

Test(map_notes, a_call_with_part_of_its_params_keeps_them_and_waits_for_the_rest)
{
    expect_events("leads[note][0][note][id]=9900004&leads[note][0][note][note_type]=10&"
                  "leads[note][0][note][created_by]=8800002&leads[note][0][note][params][duration]=40",
                  "[{'id': 'wh:7:0', 'type': 'call.logged', 'at': '" RECEIVED_AT "', 'data': {"
                  "'call': '9900004', 'manager': '8800002', 'direction': 'in',"
                  "'duration_s': 40, 'answered': false, 'details_pending': true}}]",
                  none);
}

Test(map_notes, a_common_note_is_added_to_the_deal)
{
    expect_events(
        "leads[note][0][note][id]=9900005&leads[note][0][note][element_id]=40310001&"
        "leads[note][0][note][element_type]=2&leads[note][0][note][note_type]=4&"
        "leads[note][0][note][text]=%D0%9A%D0%BB%D0%B8%D0%B5%D0%BD%D1%82+%D0%BF%D1%80%D0%BE%D1%81%D0%B8"
        "%D1%82+%D1%81%D0%BA%D0%B8%D0%B4%D0%BA%D1%83&leads[note][0][note][created_by]=8800002&"
        "leads[note][0][note][created_at]=1662100000",
        "[{'id': 'wh:7:0', 'type': 'note.added', 'at': '2022-09-02T06:26:40Z', 'data': {"
        "'note': '9900005', 'deal': '40310001', 'text': 'Клиент просит скидку', 'manager': '8800002',"
        "'actor': '8800002'}}]",
        none);
}

Test(map_notes, a_note_without_text_or_author_is_still_a_note)
{
    expect_events(
        "leads[note][0][id]=9900006&leads[note][0][element_id]=40310001&leads[note][0][note_type]=25",
        "[{'id': 'wh:7:0', 'type': 'note.added', 'at': '" RECEIVED_AT "', 'data': {"
        "'note': '9900006', 'deal': '40310001', 'text': ''}}]",
        none);
}

Test(map_notes, notes_on_contacts_are_ignored)
{
    expect_events(
        "leads[note][0][note][id]=1&leads[note][0][note][element_id]=2&leads[note][0][note][element_type]=1&"
        "leads[note][0][note][note_type]=4&contacts[note][0][note][id]=3&"
        "contacts[note][0][note][element_id]=4&contacts[note][0][note][note_type]=10",
        "[]", (struct counts){.ignored = 2});
}

Test(map_notes, a_call_without_its_caller_or_a_note_without_its_deal_is_skipped)
{
    expect_events(
        "leads[note][0][note][id]=1&leads[note][0][note][element_id]=2&leads[note][0][note][note_type]=10&"
        "leads[note][1][note][id]=3&leads[note][1][note][note_type]=4&leads[note][1][note][created_by]=5&"
        "leads[note][2][note]=x&leads[note][3][note][note_type]=4&leads[note][3][note][element_id]=2",
        "[]", (struct counts){.unknown = 4});
}

/* ---- Tasks ---- */

Test(map_tasks, a_task_on_a_contact_or_a_company_is_ignored)
{
    expect_events(
        "task[add][0][id]=7700002&task[add][0][element_id]=500&task[add][0][element_type]=1&"
        "task[add][0][task_type]=1&task[add][0][complete_before]=1662098400&"
        "task[update][0][id]=7700003&task[update][0][element_id]=501&task[update][0][element_type]=3&"
        "task[update][0][status]=1",
        "[]", (struct counts){.ignored = 2});
}

Test(map_tasks, meeting_and_other_types_and_the_plural_key)
{
    expect_events("tasks[add][0][id]=1&tasks[add][0][element_id]=2&tasks[add][0][element_type]=2&"
                  "tasks[add][0][task_type]=2&tasks[add][0][complete_before]=1662098400&"
                  "tasks[add][0][modified_by]=8800010&tasks[add][0][responsible_user_id]=8800002&"
                  "tasks[add][1][id]=3&tasks[add][1][element_id]=2&tasks[add][1][element_type]=2&"
                  "tasks[add][1][task_type]=3127&tasks[add][1][complete_before]=1662098400&"
                  "tasks[add][2][id]=4&tasks[add][2][element_id]=2&tasks[add][2][element_type]=2&"
                  "tasks[add][2][complete_before]=1662098400",
                  "[{'id': 'wh:7:0', 'type': 'task.created', 'at': '" RECEIVED_AT "', 'data': {"
                  "'task': '1', 'deal': '2', 'manager': '8800002', 'type': 'meeting',"
                  "'due_at': '2022-09-02T06:00:00Z', 'actor': '8800010'}},"
                  "{'id': 'wh:7:1', 'type': 'task.created', 'at': '" RECEIVED_AT "', 'data': {"
                  "'task': '3', 'deal': '2', 'type': 'other', 'due_at': '2022-09-02T06:00:00Z'}},"
                  "{'id': 'wh:7:2', 'type': 'task.created', 'at': '" RECEIVED_AT "', 'data': {"
                  "'task': '4', 'deal': '2', 'type': 'other', 'due_at': '2022-09-02T06:00:00Z'}}]",
                  none);
}

Test(map_tasks, a_task_added_without_element_type_or_deadline_is_skipped)
{
    expect_events("task[add][0][id]=1&task[add][0][element_id]=2&task[add][0][complete_before]=1662098400&"
                  "task[add][1][id]=3&task[add][1][element_id]=2&task[add][1][element_type]=2&"
                  "task[add][1][complete_till]=2022-09-02+09%3A00%3A00&"
                  "task[add][2][id]=5&task[add][2][element_type]=2&task[add][2][complete_before]=1662098400",
                  "[]", (struct counts){.unknown = 3});
}

Test(map_tasks, action_close_completes_without_a_result_and_an_open_update_does_not)
{
    expect_events("task[update][0][id]=1&task[update][0][status]=0&task[update][0][action_close]=1&"
                  "task[update][0][modified_by]=8800010&task[update][0][updated_at]=1662100000&"
                  "task[update][1][id]=2&task[update][1][status]=0&task[update][1][text]=x&"
                  "task[update][1][complete_before]=1662120000&task[update][1][updated_at]=1662110000",
                  "[{'id': 'wh:7:0', 'type': 'task.updated', 'at': '2022-09-02T06:26:40Z', 'data': {"
                  "'task': '1', 'actor': '8800010'}},"
                  "{'id': 'wh:7:1', 'type': 'task.completed', 'at': '2022-09-02T06:26:40Z', 'data': {"
                  "'task': '1', 'actor': '8800010'}},"
                  "{'id': 'wh:7:2', 'type': 'task.updated', 'at': '2022-09-02T09:13:20Z', 'data': {"
                  "'task': '2', 'text': 'x', 'due_at': '2022-09-02T12:00:00Z'}}]",
                  none);
}

Test(map_tasks, a_deleted_task_carries_only_its_id)
{
    expect_events("task[delete][0][id]=7700001&account[subdomain]=acme",
                  "[{'id': 'wh:7:0', 'type': 'task.deleted', 'at': '" RECEIVED_AT "', 'data': {"
                  "'task': '7700001'}}]",
                  none);
}

/* ---- Order ---- */

Test(map_order, creations_come_first_leads_before_tasks)
{
    expect_events(
        "leads[update][0][id]=1&leads[update][0][price]=10&"
        "task[update][0][id]=5&task[add][0][id]=6&task[add][0][element_id]=1&task[add][0][element_type]=2&"
        "task[add][0][complete_before]=1662120000&"
        "leads[add][0][id]=1&leads[add][0][name]=A&leads[add][0][pipeline_id]=9&"
        "leads[status][0][id]=1&leads[status][0][status_id]=7",
        "[{'id': 'wh:7:0', 'type': 'deal.created', 'at': '" RECEIVED_AT "', 'data': {"
        "'deal': '1', 'name': 'A', 'price': 0, 'pipeline': '9'}},"
        "{'id': 'wh:7:1', 'type': 'task.created', 'at': '" RECEIVED_AT "', 'data': {"
        "'task': '6', 'deal': '1', 'type': 'other', 'due_at': '2022-09-02T12:00:00Z'}},"
        "{'id': 'wh:7:2', 'type': 'deal.updated', 'at': '" RECEIVED_AT "', 'data': {"
        "'deal': '1', 'price': 10}},"
        "{'id': 'wh:7:3', 'type': 'deal.stage_changed', 'at': '" RECEIVED_AT "', 'data': {"
        "'deal': '1', 'stage': '7'}},"
        "{'id': 'wh:7:4', 'type': 'task.updated', 'at': '" RECEIVED_AT "', 'data': {"
        "'task': '5'}}]",
        none);
}

Test(map_order, entities_of_an_action_are_in_index_order)
{
    expect_events(
        "leads[delete][1][id]=20&leads[delete][0][id]=10&leads[delete][10][id]=30",
        "[{'id': 'wh:7:0', 'type': 'deal.deleted', 'at': '" RECEIVED_AT "', 'data': {'deal': '10'}},"
        "{'id': 'wh:7:1', 'type': 'deal.deleted', 'at': '" RECEIVED_AT "', 'data': {'deal': '20'}},"
        "{'id': 'wh:7:2', 'type': 'deal.deleted', 'at': '" RECEIVED_AT "', 'data': {'deal': '30'}}]",
        none);
}

/* ---- Ignored, unknown and bad entities ---- */

Test(map_skips, entities_salesops_does_not_use_are_ignored)
{
    expect_events(
        "contacts[add][0][id]=1&contacts[add][1][id]=2&contacts[update][0][id]=3&"
        "contacts[add][2][id]=4&contacts[add][2][type]=company&companies[add][0][id]=5&"
        "unsorted[add][0][uid]=x&talk[update][0][talk_id]=6&message[add][0][id]=m&"
        "catalogs[add][0][id]=7&customers[add][0][id]=8&account[subdomain]=acme&account[id]=29085511",
        "[]", (struct counts){.ignored = 10});
}

Test(map_skips, unknown_entities_and_actions_are_counted_as_unknown)
{
    expect_events("widgets[add][0][id]=1&widgets[add][1][id]=2&leads[merge][0][id]=3&task[close][0][id]=4&"
                  "leads[add][0][id]=5&leads[add][0][name]=A&leads[add][0][pipeline_id]=9&foo=bar",
                  "[{'id': 'wh:7:0', 'type': 'deal.created', 'at': '" RECEIVED_AT "', 'data': {"
                  "'deal': '5', 'name': 'A', 'price': 0, 'pipeline': '9'}}]",
                  (struct counts){.unknown = 5});
}

Test(map_skips, only_the_account_is_no_event_and_nothing_counted)
{
    expect_events(
        "account[subdomain]=acme&account[id]=29085511&account[_links][self]=https%3A%2F%2Facme.amocrm.ru",
        "[]", none);
}

Test(map_skips, a_non_numeric_id_skips_only_that_entity)
{
    /* the event ids stay consecutive: the survivor is wh:7:0 */
    expect_events("leads[add][0][id]=abc&leads[add][0][name]=A&leads[add][0][pipeline_id]=9&"
                  "leads[add][1][id]=40310009&leads[add][1][name]=B&leads[add][1][pipeline_id]=9",
                  "[{'id': 'wh:7:0', 'type': 'deal.created', 'at': '" RECEIVED_AT "', 'data': {"
                  "'deal': '40310009', 'name': 'B', 'price': 0, 'pipeline': '9'}}]",
                  (struct counts){.unknown = 1});
}

Test(map_skips, every_read_id_must_be_a_decimal_integer)
{
    expect_events(
        "leads[status][0][id]=-1&leads[status][0][status_id]=2&"
        "leads[status][1][id]=1e3&leads[status][1][status_id]=2&"
        "leads[status][2][id]=+1&leads[status][2][status_id]=2&"
        "leads[status][3][id]=99999999999999999999&leads[status][3][status_id]=2&"
        "leads[status][4][id]=1&leads[status][4][status_id]=x&"
        "leads[status][5][id]=1&leads[status][5][status_id]=2&leads[status][5][pipeline_id]=1.0&"
        "leads[status][6][id]=1&leads[status][6][status_id]=2&leads[status][6][modified_user_id]=bob&"
        "leads[status][7][id]=%201&leads[status][7][status_id]=2&"
        "leads[responsible][0][id]=1&leads[responsible][0][responsible_user_id]=u1&"
        "task[update][0][id]=1&task[update][0][modified_by]=x&"
        "task[add][0][id]=1&task[add][0][element_type]=two&task[add][0][element_id]=2&"
        "task[add][0][complete_before]=1662120000&"
        "leads[note][0][note][id]=1&leads[note][0][note][note_type]=10&leads[note][0][note][created_by]=c",
        "[]", (struct counts){.unknown = 12});
}

Test(map_skips, missing_required_ids_skip_the_entity)
{
    expect_events("leads[add][0][name]=A&leads[add][0][pipeline_id]=9&"
                  "leads[add][1][id]=1&leads[add][1][name]=A&"
                  "leads[status][0][id]=1&leads[status][1][status_id]=2&"
                  "leads[responsible][0][id]=1&leads[responsible][1][id]=1&leads[responsible][1][responsible_"
                  "user_id]=0&"
                  "leads[update][0][name]=A&leads[delete][0][id]=&task[delete][0][id]=0",
                  "[]", (struct counts){.unknown = 9});
}

Test(map_skips, a_price_that_is_not_a_whole_amount_skips_the_lead)
{
    expect_events(
        "leads[add][0][id]=1&leads[add][0][name]=A&leads[add][0][pipeline_id]=9&leads[add][0][price]=12.5&"
        "leads[update][0][id]=1&leads[update][0][price]=-3",
        "[]", (struct counts){.unknown = 2});
}

Test(map_skips, parts_of_the_wrong_shape_are_unknown)
{
    /* an action that is not an array, an entity that is not an object, a name that is a group */
    expect_events("leads[add][id]=1&leads[status][0]=5&leads[update][0][id]=1&leads[update][0][name][x]=y&"
                  "task[add]=1&leads[delete][0][id][0]=3",
                  "[]", (struct counts){.unknown = 5});
}

Test(map_skips, a_body_that_is_not_an_object_is_malformed)
{
    json_t *bodies[] = {json_array(), json_string("leads"), NULL};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        struct so_error err = {0};
        struct amo_map_stats stats = {1, 1, 1};
        cr_expect_null(amo_map_webhook(bodies[i], RECEIVED, PREFIX, &stats, &err), "body %zu", i);
        cr_expect_eq(err.code, ERR_MALFORMED, "body %zu", i);
        cr_expect_neq(err.detail[0], '\0');
        cr_expect(stats.events == 0 && stats.ignored == 0 && stats.unknown == 0);
        json_decref(bodies[i]);
    }
    /* what "0=a&1=b" decodes to */
    struct so_error err = {0};
    json_t *form = amo_form_decode("0=a&1=b", 7, &err);
    cr_assert(json_is_array(form));
    cr_expect_null(amo_map_webhook(form, RECEIVED, PREFIX, NULL, &err));
    cr_expect_eq(err.code, ERR_MALFORMED);
    json_decref(form);
}

Test(map_skips, stats_are_optional)
{
    struct so_error err = {0};
    json_t *form = amo_form_decode(leads_add, strlen(leads_add), &err);
    json_t *events = amo_map_webhook(form, RECEIVED, "x", NULL, NULL);
    cr_assert_eq(json_array_size(events), 1);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(events, 0), "id")), "x:0");
    json_decref(events);
    json_decref(form);
}
