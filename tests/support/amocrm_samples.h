/* The amoCRM sample bodies of the shared FORMAT.md (the .form files of its samples folder), copied in so that
 * tests never read files outside the project at run time: single requests, URL-encoded exactly as amoCRM
 * sends them. In time order they tell one story: lead 40310001 added for 8800001, handed to 8800002, a call
 * task added and completed, moved to "Выслано КП" (55012004) and lost; two_leads_two_actions adds 40310002
 * and 40310003 and updates 40310002 in one body. */
#ifndef SALESOPS_TEST_AMOCRM_SAMPLES_H
#define SALESOPS_TEST_AMOCRM_SAMPLES_H

static const char leads_add[] =
    "leads%5Badd%5D%5B0%5D%5Bid%5D=40310001&leads%5Badd%5D%5B0%5D%5Bname%5D=%D0%97%D0%B0%D1%8F%D0%B2%D0"
    "%BA%D0%B0+%D1%81+%D1%81%D0%B0%D0%B9%D1%82%D0%B0&leads%5Badd%5D%5B0%5D%5Bstatus_id%5D=55012001&"
    "leads%5Badd%5D%5B0%5D%5Bprice%5D=150000&leads%5Badd%5D%5B0%5D%5Bresponsible_user_id%5D=8800001&"
    "leads%5Badd%5D%5B0%5D%5Blast_modified%5D=1662012000&leads%5Badd%5D%5B0%5D%5Bmodified_user_id%5D"
    "=8800001&leads%5Badd%5D%5B0%5D%5Bcreated_user_id%5D=8800001&leads%5Badd%5D%5B0%5D%5Bdate_create%5D"
    "=1662012000&leads%5Badd%5D%5B0%5D%5Bpipeline_id%5D=6101001&leads%5Badd%5D%5B0%5D%5Baccount_id%5D"
    "=29085511&leads%5Badd%5D%5B0%5D%5Bcreated_at%5D=1662012000&leads%5Badd%5D%5B0%5D%5Bupdated_at%5D"
    "=1662012000&leads%5Badd%5D%5B0%5D%5Bcustom_fields%5D%5B0%5D%5Bid%5D=1119321&"
    "leads%5Badd%5D%5B0%5D%5Bcustom_fields%5D%5B0%5D%5Bname%5D=%D0%98%D1%81%D1%82%D0%BE%D1%87%D0%BD%D0%B8"
    "%D0%BA&leads%5Badd%5D%5B0%5D%5Bcustom_fields%5D%5B0%5D%5Bvalues%5D%5B0%5D%5Bvalue%5D=site&"
    "account%5Bsubdomain%5D=acme&account%5Bid%5D=29085511&account%5B_links%5D%5Bself%5D=https%3A%2F%2F"
    "acme.amocrm.ru";

static const char leads_responsible[] =
    "leads%5Bresponsible%5D%5B0%5D%5Bid%5D=40310001&leads%5Bresponsible%5D%5B0%5D%5Bname%5D=%D0%97%D0%B0"
    "%D1%8F%D0%B2%D0%BA%D0%B0+%D1%81+%D1%81%D0%B0%D0%B9%D1%82%D0%B0&"
    "leads%5Bresponsible%5D%5B0%5D%5Bstatus_id%5D=55012001&leads%5Bresponsible%5D%5B0%5D%5Bprice%5D"
    "=150000&leads%5Bresponsible%5D%5B0%5D%5Bresponsible_user_id%5D=8800002&"
    "leads%5Bresponsible%5D%5B0%5D%5Blast_modified%5D=1662050000&leads%5Bresponsible%5D%5B0%5D%5B"
    "modified_user_id%5D=8800010&leads%5Bresponsible%5D%5B0%5D%5Bcreated_user_id%5D=8800001&"
    "leads%5Bresponsible%5D%5B0%5D%5Bdate_create%5D=1662012000&leads%5Bresponsible%5D%5B0%5D%5B"
    "pipeline_id%5D=6101001&leads%5Bresponsible%5D%5B0%5D%5Baccount_id%5D=29085511&"
    "leads%5Bresponsible%5D%5B0%5D%5Bcreated_at%5D=1662012000&leads%5Bresponsible%5D%5B0%5D%5Bupdated_at"
    "%5D=1662050000&leads%5Bresponsible%5D%5B0%5D%5Bold_responsible_user_id%5D=8800001&"
    "account%5Bsubdomain%5D=acme&account%5Bid%5D=29085511&account%5B_links%5D%5Bself%5D=https%3A%2F%2F"
    "acme.amocrm.ru";

static const char leads_status_lost[] =
    "leads%5Bstatus%5D%5B0%5D%5Bid%5D=40310001&leads%5Bstatus%5D%5B0%5D%5Bname%5D=%D0%97%D0%B0%D1%8F%D0"
    "%B2%D0%BA%D0%B0+%D1%81+%D1%81%D0%B0%D0%B9%D1%82%D0%B0&leads%5Bstatus%5D%5B0%5D%5Bstatus_id%5D=143&"
    "leads%5Bstatus%5D%5B0%5D%5Bprice%5D=150000&leads%5Bstatus%5D%5B0%5D%5Bresponsible_user_id%5D"
    "=8800002&leads%5Bstatus%5D%5B0%5D%5Blast_modified%5D=1662184800&"
    "leads%5Bstatus%5D%5B0%5D%5Bmodified_user_id%5D=8800002&leads%5Bstatus%5D%5B0%5D%5Bcreated_user_id%5D"
    "=8800001&leads%5Bstatus%5D%5B0%5D%5Bdate_create%5D=1662012000&"
    "leads%5Bstatus%5D%5B0%5D%5Bpipeline_id%5D=6101001&leads%5Bstatus%5D%5B0%5D%5Baccount_id%5D=29085511&"
    "leads%5Bstatus%5D%5B0%5D%5Bcreated_at%5D=1662012000&leads%5Bstatus%5D%5B0%5D%5Bupdated_at%5D"
    "=1662184800&leads%5Bstatus%5D%5B0%5D%5Bold_status_id%5D=55012004&"
    "account%5Bsubdomain%5D=acme&account%5Bid%5D=29085511&account%5B_links%5D%5Bself%5D=https%3A%2F%2F"
    "acme.amocrm.ru";

static const char leads_status_to_proposal[] =
    "leads%5Bstatus%5D%5B0%5D%5Bid%5D=40310001&leads%5Bstatus%5D%5B0%5D%5Bname%5D=%D0%97%D0%B0%D1%8F%D0"
    "%B2%D0%BA%D0%B0+%D1%81+%D1%81%D0%B0%D0%B9%D1%82%D0%B0&leads%5Bstatus%5D%5B0%5D%5Bstatus_id%5D"
    "=55012004&leads%5Bstatus%5D%5B0%5D%5Bprice%5D=150000&leads%5Bstatus%5D%5B0%5D%5Bresponsible_user_id"
    "%5D=8800002&leads%5Bstatus%5D%5B0%5D%5Blast_modified%5D=1662098400&"
    "leads%5Bstatus%5D%5B0%5D%5Bmodified_user_id%5D=8800002&leads%5Bstatus%5D%5B0%5D%5Bcreated_user_id%5D"
    "=8800001&leads%5Bstatus%5D%5B0%5D%5Bdate_create%5D=1662012000&"
    "leads%5Bstatus%5D%5B0%5D%5Bpipeline_id%5D=6101001&leads%5Bstatus%5D%5B0%5D%5Baccount_id%5D=29085511&"
    "leads%5Bstatus%5D%5B0%5D%5Bcreated_at%5D=1662012000&leads%5Bstatus%5D%5B0%5D%5Bupdated_at%5D"
    "=1662098400&leads%5Bstatus%5D%5B0%5D%5Bold_status_id%5D=55012003&"
    "account%5Bsubdomain%5D=acme&account%5Bid%5D=29085511&account%5B_links%5D%5Bself%5D=https%3A%2F%2F"
    "acme.amocrm.ru";

static const char task_add[] =
    "task%5Badd%5D%5B0%5D%5Bid%5D=7700001&task%5Badd%5D%5B0%5D%5Belement_id%5D=40310001&"
    "task%5Badd%5D%5B0%5D%5Belement_type%5D=2&task%5Badd%5D%5B0%5D%5Btask_type%5D=1&"
    "task%5Badd%5D%5B0%5D%5Bdate_create%5D=2022-09-01+22%3A20%3A00&"
    "task%5Badd%5D%5B0%5D%5Btext%5D=%D0%9F%D0%B5%D1%80%D0%B5%D0%B7%D0%B2%D0%BE%D0%BD%D0%B8%D1%82%D1%8C+"
    "%D0%BA%D0%BB%D0%B8%D0%B5%D0%BD%D1%82%D1%83&task%5Badd%5D%5B0%5D%5Bstatus%5D=0&"
    "task%5Badd%5D%5B0%5D%5Baccount_id%5D=29085511&task%5Badd%5D%5B0%5D%5Bcreated_user_id%5D=8800002&"
    "task%5Badd%5D%5B0%5D%5Blast_modified%5D=2022-09-01+22%3A20%3A00&"
    "task%5Badd%5D%5B0%5D%5Bresponsible_user_id%5D=8800002&task%5Badd%5D%5B0%5D%5Bcomplete_till%5D"
    "=2022-09-02+09%3A00%3A00&task%5Badd%5D%5B0%5D%5Bcreated_at%5D=1662060000&"
    "task%5Badd%5D%5B0%5D%5Bupdated_at%5D=1662060000&task%5Badd%5D%5B0%5D%5Bcomplete_before%5D"
    "=1662098400&account%5Bsubdomain%5D=acme&account%5Bid%5D=29085511&"
    "account%5B_links%5D%5Bself%5D=https%3A%2F%2Facme.amocrm.ru";

static const char task_complete[] =
    "task%5Bupdate%5D%5B0%5D%5Bid%5D=7700001&task%5Bupdate%5D%5B0%5D%5Belement_id%5D=40310001&"
    "task%5Bupdate%5D%5B0%5D%5Belement_type%5D=2&task%5Bupdate%5D%5B0%5D%5Btask_type%5D=1&"
    "task%5Bupdate%5D%5B0%5D%5Bdate_create%5D=2022-09-01+22%3A20%3A00&"
    "task%5Bupdate%5D%5B0%5D%5Btext%5D=%D0%9F%D0%B5%D1%80%D0%B5%D0%B7%D0%B2%D0%BE%D0%BD%D0%B8%D1%82%D1%8C"
    "+%D0%BA%D0%BB%D0%B8%D0%B5%D0%BD%D1%82%D1%83&task%5Bupdate%5D%5B0%5D%5Bstatus%5D=1&"
    "task%5Bupdate%5D%5B0%5D%5Baccount_id%5D=29085511&task%5Bupdate%5D%5B0%5D%5Bcreated_user_id%5D"
    "=8800002&task%5Bupdate%5D%5B0%5D%5Blast_modified%5D=2022-09-02+06%3A00%3A00&"
    "task%5Bupdate%5D%5B0%5D%5Bresponsible_user_id%5D=8800002&task%5Bupdate%5D%5B0%5D%5Bcomplete_till%5D"
    "=2022-09-02+09%3A00%3A00&task%5Bupdate%5D%5B0%5D%5Bcreated_at%5D=1662060000&"
    "task%5Bupdate%5D%5B0%5D%5Bupdated_at%5D=1662087600&task%5Bupdate%5D%5B0%5D%5Bcomplete_before%5D"
    "=1662098400&task%5Bupdate%5D%5B0%5D%5Baction_close%5D=1&task%5Bupdate%5D%5B0%5D%5Bold_text%5D=%D0%9F"
    "%D0%B5%D1%80%D0%B5%D0%B7%D0%B2%D0%BE%D0%BD%D0%B8%D1%82%D1%8C+%D0%BA%D0%BB%D0%B8%D0%B5%D0%BD%D1%82%D1"
    "%83&task%5Bupdate%5D%5B0%5D%5Bresult%5D%5Bid%5D=4600307&task%5Bupdate%5D%5B0%5D%5Bresult%5D%5Btext"
    "%5D=%D0%9A%D0%BB%D0%B8%D0%B5%D0%BD%D1%82+%D0%B6%D0%B4%D1%91%D1%82+%D0%9A%D0%9F&"
    "account%5Bsubdomain%5D=acme&account%5Bid%5D=29085511&account%5B_links%5D%5Bself%5D=https%3A%2F%2F"
    "acme.amocrm.ru";

static const char two_leads_two_actions[] =
    "leads%5Badd%5D%5B0%5D%5Bid%5D=40310002&leads%5Badd%5D%5B0%5D%5Bname%5D=%D0%97%D0%B2%D0%BE%D0%BD%D0"
    "%BE%D0%BA&leads%5Badd%5D%5B0%5D%5Bstatus_id%5D=55012001&leads%5Badd%5D%5B0%5D%5Bprice%5D=150000&"
    "leads%5Badd%5D%5B0%5D%5Bresponsible_user_id%5D=8800001&leads%5Badd%5D%5B0%5D%5Blast_modified%5D"
    "=1662013000&leads%5Badd%5D%5B0%5D%5Bmodified_user_id%5D=8800001&"
    "leads%5Badd%5D%5B0%5D%5Bcreated_user_id%5D=8800001&leads%5Badd%5D%5B0%5D%5Bdate_create%5D"
    "=1662013000&leads%5Badd%5D%5B0%5D%5Bpipeline_id%5D=6101001&leads%5Badd%5D%5B0%5D%5Baccount_id%5D"
    "=29085511&leads%5Badd%5D%5B0%5D%5Bcreated_at%5D=1662013000&leads%5Badd%5D%5B0%5D%5Bupdated_at%5D"
    "=1662013000&leads%5Badd%5D%5B1%5D%5Bid%5D=40310003&leads%5Badd%5D%5B1%5D%5Bname%5D=%D0%A7%D0%B0%D1"
    "%82&leads%5Badd%5D%5B1%5D%5Bstatus_id%5D=55012001&leads%5Badd%5D%5B1%5D%5Bprice%5D=150000&"
    "leads%5Badd%5D%5B1%5D%5Bresponsible_user_id%5D=8800001&leads%5Badd%5D%5B1%5D%5Blast_modified%5D"
    "=1662014000&leads%5Badd%5D%5B1%5D%5Bmodified_user_id%5D=8800001&"
    "leads%5Badd%5D%5B1%5D%5Bcreated_user_id%5D=8800001&leads%5Badd%5D%5B1%5D%5Bdate_create%5D"
    "=1662014000&leads%5Badd%5D%5B1%5D%5Bpipeline_id%5D=6101001&leads%5Badd%5D%5B1%5D%5Baccount_id%5D"
    "=29085511&leads%5Badd%5D%5B1%5D%5Bcreated_at%5D=1662014000&leads%5Badd%5D%5B1%5D%5Bupdated_at%5D"
    "=1662014000&leads%5Bupdate%5D%5B0%5D%5Bid%5D=40310002&leads%5Bupdate%5D%5B0%5D%5Bname%5D=%D0%97%D0"
    "%B2%D0%BE%D0%BD%D0%BE%D0%BA&leads%5Bupdate%5D%5B0%5D%5Bstatus_id%5D=55012001&"
    "leads%5Bupdate%5D%5B0%5D%5Bprice%5D=175000&leads%5Bupdate%5D%5B0%5D%5Bresponsible_user_id%5D"
    "=8800001&leads%5Bupdate%5D%5B0%5D%5Blast_modified%5D=1662015000&"
    "leads%5Bupdate%5D%5B0%5D%5Bmodified_user_id%5D=8800001&leads%5Bupdate%5D%5B0%5D%5Bcreated_user_id%5D"
    "=8800001&leads%5Bupdate%5D%5B0%5D%5Bdate_create%5D=1662013000&"
    "leads%5Bupdate%5D%5B0%5D%5Bpipeline_id%5D=6101001&leads%5Bupdate%5D%5B0%5D%5Baccount_id%5D=29085511&"
    "leads%5Bupdate%5D%5B0%5D%5Bcreated_at%5D=1662013000&leads%5Bupdate%5D%5B0%5D%5Bupdated_at%5D"
    "=1662015000&account%5Bsubdomain%5D=acme&account%5Bid%5D=29085511&"
    "account%5B_links%5D%5Bself%5D=https%3A%2F%2Facme.amocrm.ru";

#endif
