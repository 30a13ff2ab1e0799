/* Every handler of the route table. */
#ifndef SALESOPS_API_HANDLERS_H
#define SALESOPS_API_HANDLERS_H
#include "salesops/http.h"

void handle_healthz(struct so_req *req);
void handle_readyz(struct so_req *req);
void handle_openapi(struct so_req *req);
void handle_account_get(struct so_req *req);
void handle_account_patch(struct so_req *req);
void handle_api_key_create(struct so_req *req);
void handle_api_key_list(struct so_req *req);
void handle_api_key_delete(struct so_req *req);
void handle_manager_create(struct so_req *req);
void handle_manager_list(struct so_req *req);
void handle_manager_get(struct so_req *req);
void handle_manager_patch(struct so_req *req);
void handle_pipeline_create(struct so_req *req);
void handle_pipeline_list(struct so_req *req);
void handle_pipeline_get(struct so_req *req);
void handle_pipeline_patch(struct so_req *req);
void handle_loss_reason_create(struct so_req *req);
void handle_loss_reason_list(struct so_req *req);
void handle_loss_reason_get(struct so_req *req);
void handle_loss_reason_patch(struct so_req *req);
void handle_deal_create(struct so_req *req);
void handle_deal_list(struct so_req *req);
void handle_deal_get(struct so_req *req);
void handle_deal_patch(struct so_req *req);
void handle_deal_close(struct so_req *req);
void handle_deal_reopen(struct so_req *req);
void handle_deal_history(struct so_req *req);
void handle_note_create(struct so_req *req);
void handle_note_list(struct so_req *req);
void handle_task_create(struct so_req *req);
void handle_task_list(struct so_req *req);
void handle_task_get(struct so_req *req);
void handle_task_patch(struct so_req *req);
void handle_task_delete(struct so_req *req);
void handle_task_complete(struct so_req *req);
void handle_call_create(struct so_req *req);
void handle_call_list(struct so_req *req);
void handle_call_get(struct so_req *req);
void handle_events_post(struct so_req *req);
void handle_inbox_list(struct so_req *req);
void handle_inbox_retry(struct so_req *req);
void handle_webhook_amocrm(struct so_req *req);
void handle_integration_get(struct so_req *req);
void handle_integration_put(struct so_req *req);
void handle_distribution_get(struct so_req *req);
void handle_distribution_settings_get(struct so_req *req);
void handle_distribution_settings_put(struct so_req *req);
void handle_distribution_next(struct so_req *req);
void handle_assignment_list(struct so_req *req);
void handle_focus_filter_put(struct so_req *req);
void handle_focus_filter_get(struct so_req *req);
void handle_focus_start(struct so_req *req);
void handle_focus_active_get(struct so_req *req);
void handle_focus_session_get(struct so_req *req);
void handle_focus_session_list(struct so_req *req);
void handle_focus_item_done(struct so_req *req);
void handle_focus_stop(struct so_req *req);
void handle_rejection_settings_get(struct so_req *req);
void handle_rejection_settings_put(struct so_req *req);
void handle_review_list(struct so_req *req);
void handle_review_get(struct so_req *req);
void handle_review_decision(struct so_req *req);
void handle_rejection_stats(struct so_req *req);
void handle_analytics_managers(struct so_req *req);
void handle_analytics_summary(struct so_req *req);
void handle_analytics_funnel(struct so_req *req);
void handle_analytics_checklist(struct so_req *req);
void handle_targets_get(struct so_req *req);
void handle_targets_put(struct so_req *req);

#endif
