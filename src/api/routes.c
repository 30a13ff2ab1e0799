/* The route table: method, path pattern, roles allowed (API.md's role table), flags, handler. */
#include "handlers.h"
#include "salesops/api.h"

#define A  ROLE_BIT(ROLE_ADMIN)
#define H  ROLE_BIT(ROLE_HEAD)
#define M  ROLE_BIT(ROLE_MANAGER)
#define R  ROLE_BIT(ROLE_READONLY)
#define J  ROUTE_JSON_BODY
#define V1 "/api/v1"

const struct so_route so_api_routes[] = {
    {"GET", "/healthz", ROUTE_PUBLIC, ROUTE_NO_DB, handle_healthz},
    {"GET", "/readyz", ROUTE_PUBLIC, ROUTE_NO_DB, handle_readyz},
    {"GET", "/openapi.yaml", ROUTE_PUBLIC, ROUTE_NO_DB, handle_openapi},
    {"GET", "/metrics", ROUTE_PUBLIC, ROUTE_NO_DB, handle_metrics},
    {"GET", "/", ROUTE_PUBLIC, ROUTE_NO_DB, handle_page},
    {"GET", "/assets/{name}", ROUTE_PUBLIC, ROUTE_NO_DB, handle_asset},

    {"GET", V1 "/account", A | H | R, 0, handle_account_get},
    {"PATCH", V1 "/account", A, J, handle_account_patch},

    {"POST", V1 "/api-keys", A, J, handle_api_key_create},
    {"GET", V1 "/api-keys", A, 0, handle_api_key_list},
    {"DELETE", V1 "/api-keys/{id}", A, 0, handle_api_key_delete},

    {"POST", V1 "/managers", A | H, J, handle_manager_create},
    {"GET", V1 "/managers", A | H | M | R, 0, handle_manager_list},
    {"GET", V1 "/managers/{id}", A | H | M | R, 0, handle_manager_get},
    {"PATCH", V1 "/managers/{id}", A | H, J, handle_manager_patch},
    {"PUT", V1 "/managers/{id}/focus-filter", A | H, J, handle_focus_filter_put},
    {"GET", V1 "/managers/{id}/focus-filter", A | H | M | R, 0, handle_focus_filter_get},
    {"POST", V1 "/managers/{id}/focus", A | H | M, J, handle_focus_start},
    {"GET", V1 "/managers/{id}/focus", A | H | M | R, 0, handle_focus_active_get},
    {"GET", V1 "/focus-sessions", A | H | M | R, 0, handle_focus_session_list},
    {"GET", V1 "/focus-sessions/{id}", A | H | M | R, 0, handle_focus_session_get},
    {"POST", V1 "/focus-sessions/{id}/items/{deal_id}/done", A | H | M, J, handle_focus_item_done},
    {"POST", V1 "/focus-sessions/{id}/stop", A | H | M, J, handle_focus_stop},

    {"GET", V1 "/distribution", A | H | R, 0, handle_distribution_get},
    {"GET", V1 "/distribution/settings", A | H | R, 0, handle_distribution_settings_get},
    {"PUT", V1 "/distribution/settings", A | H, J, handle_distribution_settings_put},
    {"POST", V1 "/distribution/next", A | H, J, handle_distribution_next},
    {"GET", V1 "/distribution/assignments", A | H | R, 0, handle_assignment_list},

    {"GET", V1 "/rejection-control/settings", A | H | R, 0, handle_rejection_settings_get},
    {"PUT", V1 "/rejection-control/settings", A | H, J, handle_rejection_settings_put},
    {"GET", V1 "/rejection-control/reviews", A | H | R, 0, handle_review_list},
    {"GET", V1 "/rejection-control/reviews/{id}", A | H | R, 0, handle_review_get},
    {"POST", V1 "/rejection-control/reviews/{id}/decision", A | H, J, handle_review_decision},
    {"GET", V1 "/rejection-control/stats", A | H | R, 0, handle_rejection_stats},

    {"GET", V1 "/analytics/managers", A | H | R, 0, handle_analytics_managers},
    {"GET", V1 "/analytics/summary", A | H | R, 0, handle_analytics_summary},
    {"GET", V1 "/analytics/funnel", A | H | R, 0, handle_analytics_funnel},
    {"GET", V1 "/analytics/checklist", A | H | R, 0, handle_analytics_checklist},
    {"GET", V1 "/analytics/targets", A | H | R, 0, handle_targets_get},
    {"PUT", V1 "/analytics/targets", A | H, J, handle_targets_put},

    {"POST", V1 "/pipelines", A | H, J, handle_pipeline_create},
    {"GET", V1 "/pipelines", A | H | M | R, 0, handle_pipeline_list},
    {"GET", V1 "/pipelines/{id}", A | H | M | R, 0, handle_pipeline_get},
    {"PATCH", V1 "/pipelines/{id}", A | H, J, handle_pipeline_patch},

    {"POST", V1 "/loss-reasons", A | H, J, handle_loss_reason_create},
    {"GET", V1 "/loss-reasons", A | H | M | R, 0, handle_loss_reason_list},
    {"GET", V1 "/loss-reasons/{id}", A | H | M | R, 0, handle_loss_reason_get},
    {"PATCH", V1 "/loss-reasons/{id}", A | H, J, handle_loss_reason_patch},

    {"POST", V1 "/deals", A | H | M, J, handle_deal_create},
    {"GET", V1 "/deals", A | H | M | R, 0, handle_deal_list},
    {"GET", V1 "/deals/{id}", A | H | M | R, 0, handle_deal_get},
    {"PATCH", V1 "/deals/{id}", A | H | M, J, handle_deal_patch},
    {"POST", V1 "/deals/{id}/close", A | H | M, J, handle_deal_close},
    {"POST", V1 "/deals/{id}/reopen", A | H | M, J, handle_deal_reopen},
    {"GET", V1 "/deals/{id}/history", A | H | M | R, 0, handle_deal_history},
    {"POST", V1 "/deals/{id}/notes", A | H | M, J, handle_note_create},
    {"GET", V1 "/deals/{id}/notes", A | H | M | R, 0, handle_note_list},

    {"POST", V1 "/tasks", A | H | M, J, handle_task_create},
    {"GET", V1 "/tasks", A | H | M | R, 0, handle_task_list},
    {"GET", V1 "/tasks/{id}", A | H | M | R, 0, handle_task_get},
    {"PATCH", V1 "/tasks/{id}", A | H | M, J, handle_task_patch},
    {"DELETE", V1 "/tasks/{id}", A | H | M, 0, handle_task_delete},
    {"POST", V1 "/tasks/{id}/complete", A | H | M, J, handle_task_complete},

    {"POST", V1 "/calls", A | H | M, J, handle_call_create},
    {"GET", V1 "/calls", A | H | M | R, 0, handle_call_list},
    {"GET", V1 "/calls/{id}", A | H | M | R, 0, handle_call_get},

    {"POST", V1 "/events", A | H, ROUTE_RAW_BODY, handle_events_post},
    {"GET", V1 "/webhooks/inbox", A | H, 0, handle_inbox_list},
    {"POST", V1 "/webhooks/inbox/{id}/retry", A | H, 0, handle_inbox_retry},
    {"POST", V1 "/webhooks/amocrm/{webhook_token}", ROUTE_PUBLIC, ROUTE_RAW_BODY | ROUTE_NO_DB, handle_webhook_amocrm},
    {"PUT", V1 "/integrations/amocrm", A, J, handle_integration_put},
    {"GET", V1 "/integrations/amocrm", A, 0, handle_integration_get},
};

const size_t so_api_route_count = sizeof so_api_routes / sizeof so_api_routes[0];
