/* Configuration: defaults, environment, flags, and the values refused at start. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include "salesops/config.h"

static int load(struct so_config *cfg, const char *flag, char *err, size_t errlen)
{
    char *argv[] = {"salesops", (char *)flag, NULL};
    int argc = flag ? 2 : 1;
    return config_load(cfg, &argc, argv, err, errlen);
}

Test(config, the_apply_batch_defaults_to_100_and_takes_the_environment_and_the_flag)
{
    struct so_config cfg;
    char err[256] = "";
    unsetenv("SALESOPS_APPLY_BATCH");
    cr_assert_eq(load(&cfg, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cfg.apply_batch, 100);
    setenv("SALESOPS_APPLY_BATCH", "25", 1);
    cr_assert_eq(load(&cfg, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cfg.apply_batch, 25);
    cr_assert_eq(load(&cfg, "--apply-batch=1000", err, sizeof err), 0, "%s", err);
    cr_assert_eq(cfg.apply_batch, 1000);
    unsetenv("SALESOPS_APPLY_BATCH");
}

Test(config, an_apply_batch_of_0_or_over_1000_is_refused_with_its_name)
{
    struct so_config cfg;
    const char *bad[] = {"--apply-batch=0", "--apply-batch=1001", "--apply-batch=ten"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        cr_assert_eq(load(&cfg, bad[i], err, sizeof err), -1, "%s was taken", bad[i]);
        cr_assert(strstr(err, "SALESOPS_APPLY_BATCH: expected a whole number from 1 to 1000") != NULL, "%s: %s",
                  bad[i], err);
    }
}
