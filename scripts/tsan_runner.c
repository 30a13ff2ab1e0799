/* A minimal stand-in for Criterion's runner, for scripts/tsan.sh only.
 *
 * Criterion 2.4 cannot start under ThreadSanitizer: its sandbox (BoxFort) maps a shared arena at a random
 * fixed address between 0x2000'0000'0000 and 0x6000'0000'0000, which is TSan's shadow and meta memory, and
 * gives up ("Could not initialize inheritable arena: Resource temporarily unavailable") or crashes
 * (Criterion issue #274, open since 2018). So scripts/tsan.sh links the TSan-built objects of a test binary
 * (the test file, tests/support/ and libsalesops.a) with this file instead of libcriterion.
 *
 * It defines the handful of symbols that the Test()/TestSuite() macros and the cr_assert* macros of Criterion
 * 2.4 call (criterion_internal_test_setup/main/teardown, criterion_send_assert, criterion_abort_test, ...),
 * finds the tests in the "cr_tst" and "cr_sts" sections as Criterion does, and runs each test in a forked
 * child of its own (suite .init, test .init, the test, test .fini, suite .fini: Criterion's order), one at a
 * time. A failed cr_assert prints file:line and the message and ends the test as Criterion would (the
 * .fini fixtures still run); cr_expect failures mark the test failed and go on.
 *
 *   RUNNER [--list] [--filter SUBSTRING]    SUBSTRING matches "suite/test"
 *
 * TSAN_RUNNER_TIMEOUT (seconds, default 900) bounds each test. The last line is "N passed, M failed"; the
 * exit status is 1 when a test failed, crashed or timed out. A child that ends with status 66 is one where
 * TSan reported (its default exitcode); the runner counts it as failed and says so.
 *
 * ParameterizedTest runs once per parameter, each in a process of its own, as with Criterion.
 * Only the parts of Criterion these suites use are here: no theories, no .signal/.exit_code expectations,
 * no --full-stats. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <criterion/options.h>
#include <criterion/parameterized.h>
#include <criterion/stats.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* the section bounds that the linker defines for "cr_tst" and "cr_sts" */
extern struct criterion_test *__start_cr_tst[] __attribute__((weak));
extern struct criterion_test *__stop_cr_tst[] __attribute__((weak));
extern struct criterion_suite *__start_cr_sts[] __attribute__((weak));
extern struct criterion_suite *__stop_cr_sts[] __attribute__((weak));

struct criterion_options criterion_options;

static const struct criterion_test *current_test;
static const struct criterion_suite *current_suite;
static void *current_param; /* the parameter of a ParameterizedTest, else NULL */
static jmp_buf *abort_to;
static bool test_failed;

/* ------------------------------------------------------------------ what the Criterion macros call */

int cr_asprintf(char **strp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(strp, fmt, ap);
    va_end(ap);
    if (n < 0) *strp = NULL;
    return n;
}

void cr_asprintf_free(char *buf)
{
    free(buf);
}

char *cr_translate_assert_msg(int msg_index, ...)
{
    static const char *const formats[] = {
        [CRITERION_ASSERT_MSG_FAIL] = "The conditions for this assertion were not met.",
        [CRITERION_ASSERT_MSG_EXPR_FALSE] = "The expression %s is false.",
        [CRITERION_ASSERT_MSG_EXPR_AS_STRINGS_FALSE] = "The expression (as strings) %s is false.",
        [CRITERION_ASSERT_MSG_IS_NULL] = "%s is null.",
        [CRITERION_ASSERT_MSG_IS_NOT_NULL] = "%s is not null.",
        [CRITERION_ASSERT_MSG_IS_EMPTY] = "%s is empty.",
        [CRITERION_ASSERT_MSG_IS_NOT_EMPTY] = "%s is not empty.",
    };
    const char *fmt = "Assertion failed.";
    if (msg_index >= 0 && (size_t)msg_index < sizeof formats / sizeof formats[0] && formats[msg_index])
        fmt = formats[msg_index];
    char *out = NULL;
    va_list ap;
    va_start(ap, msg_index);
    if (vasprintf(&out, fmt, ap) < 0) out = NULL;
    va_end(ap);
    return out;
}

void cri_asserts_passed_incr(void)
{
}

void cr_log(enum criterion_severity severity, const char *msg, ...)
{
    static const char *const tags[] = {"[INFO]", "[WARN]", "[ERR ]"};
    va_list ap;
    va_start(ap, msg);
    fprintf(stderr, "%s ", (unsigned)severity < 3 ? tags[severity] : "[LOG ]");
    vfprintf(stderr, msg, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void criterion_send_assert(struct criterion_assert_stats *stats)
{
    if (stats->passed) return;
    test_failed = true;
    fprintf(stderr, "[FAIL] %s:%u: Assertion failed: %s\n", stats->file, stats->line,
            stats->message ? stats->message : "");
    fflush(stderr);
}

void criterion_abort_test(void)
{
    test_failed = true;
    if (abort_to) longjmp(*abort_to, 1);
    _exit(1);
}

void criterion_continue_test(void)
{
}

void criterion_internal_test_setup(void)
{
    if (current_suite && current_suite->data && current_suite->data->init) current_suite->data->init();
    if (current_test->data && current_test->data->init) current_test->data->init();
}

void criterion_internal_test_main(void (*fn)(void))
{
    jmp_buf here;
    jmp_buf *outer = abort_to;
    abort_to = &here;
    if (!setjmp(here)) {
        if (current_test->data && current_test->data->kind_ == CR_TEST_PARAMETERIZED)
            ((void (*)(void *))fn)(current_param); /* a ParameterizedTest takes its parameter */
        else
            fn();
    }
    abort_to = outer;
}

void criterion_internal_test_teardown(void)
{
    if (current_test->data && current_test->data->fini) current_test->data->fini();
    if (current_suite && current_suite->data && current_suite->data->fini) current_suite->data->fini();
}

/* ---------------------------------------------------------------------------------------- runner */

static const struct criterion_suite *suite_of(const struct criterion_test *t)
{
    if (!__start_cr_sts) return NULL;
    for (struct criterion_suite **s = __start_cr_sts; s < __stop_cr_sts; s++)
        if (*s && !strcmp((*s)->name, t->category)) return *s;
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_child(const struct criterion_test *t)
{
    current_test = t;
    current_suite = suite_of(t);
    test_failed = false;
    jmp_buf top;
    abort_to = &top;
    if (setjmp(top)) {
        /* a cr_assert failed outside the test body (in an .init fixture): no teardown, as a crash */
        fflush(NULL);
        exit(1);
    }
    t->test(); /* Criterion's trampoline: setup, main, teardown */
    fflush(NULL);
    return test_failed ? 1 : 0;
}

/* Runs t (with param for a ParameterizedTest) in a forked child; true when it passed. */
static bool run_one(const struct criterion_test *t, void *param, const char *id, unsigned timeout)
{
    printf("[RUN ] %s\n", id);
    fflush(NULL);
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        alarm(timeout);
        current_param = param;
        exit(run_child(t));
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        ;
    double secs = now_s() - t0;
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok)
        printf("[PASS] %s (%.1f s)\n", id, secs);
    else if (WIFSIGNALED(status))
        printf("[FAIL] %s: killed by signal %d%s (%.1f s)\n", id, WTERMSIG(status),
               WTERMSIG(status) == SIGALRM ? ", timed out" : "", secs);
    else if (WEXITSTATUS(status) == 66)
        printf("[FAIL] %s: exit status 66, ThreadSanitizer reported (%.1f s)\n", id, secs);
    else
        printf("[FAIL] %s: exit status %d (%.1f s)\n", id, WEXITSTATUS(status), secs);
    fflush(NULL);
    return ok;
}

int main(int argc, char **argv)
{
    const char *filter = NULL;
    bool list = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--list")) {
            list = true;
        } else if (!strcmp(argv[i], "--filter") && i + 1 < argc) {
            filter = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--list] [--filter SUBSTRING]\n", argv[0]);
            return 2;
        }
    }
    if (!__start_cr_tst || &__start_cr_tst[0] == &__stop_cr_tst[0]) {
        fprintf(stderr, "no Criterion tests linked in\n");
        return 2;
    }
    const char *timeout_env = getenv("TSAN_RUNNER_TIMEOUT");
    unsigned timeout = timeout_env && atoi(timeout_env) > 0 ? (unsigned)atoi(timeout_env) : 900;

    int passed = 0, failed = 0;
    for (struct criterion_test **tp = __start_cr_tst; tp < __stop_cr_tst; tp++) {
        const struct criterion_test *t = *tp;
        if (!t) continue;
        char id[512];
        snprintf(id, sizeof id, "%s/%s", t->category, t->name);
        if (filter && !strstr(id, filter)) continue;
        if (list) {
            printf("%s\n", id);
            continue;
        }
        if (t->data && t->data->disabled) {
            printf("[SKIP] %s (disabled)\n", id);
            continue;
        }
        if (t->data && t->data->kind_ == CR_TEST_PARAMETERIZED && t->data->param_) {
            /* as Criterion: one process per parameter (the array is static: the forked child sees it) */
            struct criterion_test_params params = t->data->param_();
            for (size_t k = 0; k < params.length; k++) {
                char label[600];
                snprintf(label, sizeof label, "%s[%zu]", id, k);
                if (run_one(t, (char *)params.params + k * params.size, label, timeout))
                    passed++;
                else
                    failed++;
            }
            if (params.cleanup) params.cleanup(&params);
        } else if (t->data && t->data->kind_ != CR_TEST_NORMAL) {
            printf("[FAIL] %s: a kind of test this runner does not run (theory?)\n", id);
            failed++;
        } else if (run_one(t, NULL, id, timeout)) {
            passed++;
        } else {
            failed++;
        }
    }
    if (!list) printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
