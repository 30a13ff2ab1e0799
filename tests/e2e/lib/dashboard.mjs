/* The browser half of tests/e2e/dashboard.sh: drives the dashboard in Debian's Chromium through playwright-core
 * and compares what the page shows with what the API answers for the same request.
 *
 * Environment: BASE (the server's URL), ADMIN_KEY, READONLY_KEY, READONLY_KEY_ID, MANAGER_KEY, TOOLS (the npm
 * prefix that holds playwright-core), CHROMIUM (the browser), SHOTS (folder for failure screenshots), WORK (a
 * scratch folder).
 *
 * Output on stdout, one line each, fields separated by \x1f (so that empty fields survive `read`):
 *   check NAME EXPECTED ACTUAL   one check for the shell's `check`
 *   shot PATH                    the screenshot of the check just before it, which failed
 *   value NAME VALUE             a fact the shell then checks through the API (the review returned, ...)
 * The driver does not count passes and failures itself; it saves a screenshot SHOTS/NAME.png of every check
 * whose two sides differ (and WORK/after-return.png for the shell's own checks).
 */
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const env = process.env;
const { chromium } = createRequire(join(env.TOOLS, "noop.js"))("playwright-core");
const SEP = "\x1f";
const STEP_TIMEOUT_MS = 5000;
const RETURN_NOTE = "Предложите рассрочку: клиент уходил из-за цены (проверка страницы)";

let page;
let completed = true;
const pageErrors = [];

// ------------------------------------------------------------------------------------------- output

const oneLine = (value) => String(value).replace(/[\x1f\r\n]+/g, " ");

function emit(...fields) {
    process.stdout.write(fields.map(oneLine).join(SEP) + "\n");
}

function slug(name) {
    return name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 60) || "step";
}

async function screenshot(path) {
    try {
        await page.screenshot({ path, fullPage: true });
        return path;
    } catch (error) {
        process.stderr.write(`could not save a screenshot to ${path}: ${error.message}\n`);
        return null;
    }
}

async function check(name, expected, actual) {
    const want = oneLine(expected);
    const got = oneLine(actual);
    emit("check", name, want, got);
    if (want !== got) {
        mkdirSync(env.SHOTS, { recursive: true });
        const saved = await screenshot(join(env.SHOTS, `${slug(name)}.png`));
        if (saved) emit("shot", saved);
    }
}

/* One check over many items ({label, expected, actual}): passes as "N of N match", fails naming only the
 * items that differ. */
async function checkAll(name, items) {
    const wrong = items.filter((i) => oneLine(i.expected) !== oneLine(i.actual))
        .map((i) => `${i.label}: expected ${i.expected}, shown ${i.actual}`);
    const all = `${items.length} of ${items.length} match`;
    await check(name, all, wrong.length ? wrong.join("; ") : all);
}

/* Runs one step; an exception becomes a failed check of that name. Later steps need the earlier ones, so
 * after a failure the rest are skipped (and the run reports that it did not complete). */
async function step(name, body) {
    if (!completed) return;
    try {
        await body();
    } catch (error) {
        completed = false;
        await check(name, "the step runs", `error: ${error.message.split("\n")[0]}`);
    }
}

// ---------------------------------------------------------------------------------------------- API

async function api(path, { key = env.ADMIN_KEY, method = "GET", body } = {}) {
    const headers = { Authorization: `Bearer ${key}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(`${env.BASE}/api/v1${path}`, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function apiOk(path, options) {
    const reply = await api(path, options);
    if (reply.status < 200 || reply.status > 299) {
        throw new Error(`${path}: ${reply.status} ${JSON.stringify(reply.body)}`);
    }
    return reply.body;
}

// --------------------------------------------------------------------------------------------- page

const clean = (text) => String(text ?? "").replace(/[\u00a0\u202f]/g, " ").replace(/\s+/g, " ").trim();
const digits = (text) => clean(text).replace(/[^0-9-]/g, "");
const text = async (selector) => clean(await page.locator(selector).first().textContent());
const attr = (locator, name) => locator.getAttribute(name);

async function signIn(key) {
    await page.fill("#api-key", key);
    await page.click("#sign-in-form button[type=submit]");
}

async function signInAs(key) {
    await signIn(key);
    await page.waitForSelector("#dashboard:not([hidden])");
    await page.waitForSelector("#checklist-table td[data-kpi]");
    await page.waitForSelector("#review-list li");
}

/* Waits until the element's text is not empty, and returns it. */
async function textAppears(selector) {
    await page.waitForFunction((s) => (document.querySelector(s)?.textContent ?? "") !== "", selector);
    return text(selector);
}

async function checklistCells() {
    return page.$$eval("#checklist-table td[data-kpi]", (cells) => cells.map((td) => ({
        manager: td.dataset.manager,
        kpi: td.dataset.kpi,
        flag: td.dataset.flag,
        classFlag: [...td.classList].find((c) => c.startsWith("flag-"))?.slice(5) ?? "",
        value: td.querySelector(".value").textContent,
        delta: td.querySelector(".delta").textContent,
    })));
}

// What the brief fixes about the display, written out independently of the page's code.
const arrow = (delta) => (delta === null ? "–" : delta > 0 ? "▲" : delta < 0 ? "▼" : "–");

/* A ratio has at most 4 decimals: as an integer of 1/10000 it rounds half up exactly, to a percent with one
 * decimal. */
const percent = (ratio) => (ratio === null ? "—" : String(Math.round(Math.round(ratio * 10000) / 10) / 10));

function shownPercent(shown) {
    if (clean(shown) === "—") return "—";
    return String(Number(clean(shown).replace(/[^0-9,.-]/g, "").replace(",", ".")));
}

function duration(seconds) {
    if (seconds === null) return "—";
    if (seconds < 60) return `${seconds} с`;
    const hours = Math.floor(seconds / 3600);
    const minutes = Math.floor((seconds % 3600) / 60);
    if (hours === 0) return `${minutes} мин`;
    return minutes === 0 ? `${hours} ч` : `${hours} ч ${minutes} мин`;
}

// -------------------------------------------------------------------------------------------- steps

async function checkSignIn() {
    await page.goto(`${env.BASE}/`);
    await page.waitForSelector("#sign-in:not([hidden])");

    await signIn("sok_this_key_does_not_exist");
    const refused = await textAppears("#sign-in-error");
    await check("a wrong key is refused on the sign-in form", "Ключ не подошёл", refused.slice(0, 15));

    await signIn(env.MANAGER_KEY);
    await page.waitForFunction(() => /менеджера/.test(document.querySelector("#sign-in-error").textContent));
    const told = await text("#sign-in-error");
    await check("a manager key is told analytics answer 403", "true true",
        `${told.includes("ключ менеджера")} ${told.includes("403")}`);

    const account = await apiOk("/account");
    await signInAs(env.ADMIN_KEY);
    await check("sign in with the demo admin key shows the account", account.name, await text("#account-name"));
    const kept = await page.evaluate((key) => [
        `session=${sessionStorage.getItem("salesops.api_key") === key}`,
        `local=${localStorage.length}`,
        `cookie=${document.cookie}`,
        `url-has-key=${location.href.includes(key)}`,
    ].join(" "), env.ADMIN_KEY);
    await check("the key is kept in sessionStorage only", "session=true local=0 cookie= url-has-key=false", kept);
}

async function checkChecklist() {
    const end = await page.inputValue("#checklist-form input[name=end]");
    const weeks = await page.inputValue("#checklist-form input[name=weeks]");
    const reply = await apiOk(`/analytics/checklist?weeks=${weeks}&end=${end}`);
    const week = reply.weeks[reply.weeks.length - 1];
    const table = page.locator("#checklist-table");
    await check("the checklist shows the reply's last week", `${week.week_start}..${week.week_end}`,
        `${await attr(table, "data-week-start")}..${await attr(table, "data-week-end")}`);

    const cells = await checklistCells();
    const cell = (manager, kpi) => cells.find((c) => c.manager === manager && c.kpi === kpi) ?? {};
    // the rows as the page names them: manager ids, then "team"
    const rows = [...week.managers.map((m) => [String(m.manager_id), m]), ["team", week.team]];
    const perRow = (show) => rows.map(([id, row]) => `${id}=${show(id, row)}`).join(" ");
    const calls = (id) => cell(id, "outgoing_calls");

    await check("outgoing calls per manager and team as the API counts them",
        perRow((id, row) => row.outgoing_calls), perRow((id) => clean(calls(id).value)));
    await check("outgoing calls flags (data-flag and CSS class)",
        perRow((id, row) => `${row.flags.outgoing_calls ?? "none"}/${row.flags.outgoing_calls ?? "none"}`),
        perRow((id) => `${calls(id).flag}/${calls(id).classFlag}`));
    await check("outgoing calls deltas as arrows",
        perRow((id, row) => `${arrow(row.delta.outgoing_calls)}${Math.abs(row.delta.outgoing_calls ?? 0)}`),
        perRow((id) => clean(calls(id).delta).replace(/ /g, "")));

    // every (row, figure) cell: expected(row, figure) is what the API says, shown(cell) what the page shows
    const everyCell = (kpis, expected, shown) => rows.flatMap(([id, row]) => kpis.map((k) => ({
        label: `${id}.${k}`, expected: expected(row, k), actual: shown(cell(id, k)),
    })));
    const counts = ["deals_created", "won", "won_revenue", "lost", "deals_without_tasks",
        "deals_with_overdue_tasks", "missed_deals", "tasks_due", "tasks_on_time"];
    await checkAll("every cell carries the API's verdict (data-flag and CSS class)",
        everyCell(Object.keys(week.team.flags), (row, k) => row.flags[k] ?? "none",
            (c) => (c.flag === c.classFlag ? c.flag : `data-flag ${c.flag}, class ${c.classFlag}`)));
    await checkAll("counts and money match the API",
        everyCell(counts, (row, k) => String(row[k]), (c) => digits(c.value)));
    await checkAll("every delta's arrow and size match the API",
        everyCell(counts, (row, k) => `${arrow(row.delta[k])}${row.delta[k] === null ? "" : Math.abs(row.delta[k])}`,
            (c) => `${clean(c.delta)[0]}${digits(c.delta)}`));
    const ratios = ["conversion", "close_rate", "on_time_share"];
    const seconds = ["talk_time_s", "overdue_total_s", "overdue_avg_s"];
    await checkAll("shares are shown as percents",
        everyCell(ratios, (row, k) => percent(row[k]), (c) => shownPercent(c.value)));
    await checkAll("seconds are shown as hours and minutes",
        everyCell(seconds, (row, k) => duration(row[k]), (c) => clean(c.value)));

    const revenue = clean(cell("team", "won_revenue").value);
    await check("money is grouped by thousands", week.team.won_revenue >= 1000 ? "grouped" : "small",
        week.team.won_revenue < 1000 ? "small" : /\d \d{3}$/.test(revenue) ? "grouped" : revenue);

    const findings = await page.$$eval("#findings li", (items) => items.map((li) => li.textContent));
    await check(`the ${reply.findings.length} findings are listed`,
        reply.findings.map((f) => clean(f.text)).join(" | "), findings.map(clean).join(" | "));
}

async function funnelShown() {
    return page.$$eval("#funnel-stages li[data-stage-id]", (items) => items.map((li) => {
        const track = li.querySelector(".bar-track").getBoundingClientRect().width;
        return {
            name: li.querySelector(".stage-name").textContent,
            entered: li.querySelector("[data-figure=entered] b").textContent,
            lost: li.querySelector("[data-figure=lost] b").textContent,
            width: Math.round((li.querySelector(".bar").getBoundingClientRect().width / track) * 100),
        };
    }));
}

/* The funnel the page shows for its pickers' values against the API's for the same query. */
async function compareFunnel(label) {
    const form = "#funnel-form";
    const pipeline = await page.inputValue(`${form} select[name=pipeline_id]`);
    const from = await page.inputValue(`${form} input[name=from]`);
    const to = await page.inputValue(`${form} input[name=to]`);
    const reply = await apiOk(`/analytics/funnel?pipeline_id=${pipeline}&from=${from}&to=${to}`);
    const shown = await funnelShown();
    const widest = Math.max(...reply.stages.map((s) => s.entered));
    await check(`a bar per stage with the API's entered and lost (${label})`,
        reply.stages.map((s) => `${clean(s.name)}=${s.entered}/${s.lost}`).join("; "),
        shown.map((s) => `${clean(s.name)}=${digits(s.entered)}/${digits(s.lost)}`).join("; "));
    await check(`bar widths are proportional to entered (${label})`,
        reply.stages.map((s) => (widest ? Math.round((s.entered / widest) * 100) : 0)).join(" "),
        shown.map((s) => s.width).join(" "));
    return reply;
}

async function checkFunnel() {
    await page.waitForSelector("#funnel-stages li[data-stage-id]");
    const reply = await compareFunnel("default period");
    const worst = await page.$$eval("#worst-stages > li[data-stage-id]", (items) => items.map((li) =>
        `${li.dataset.stageId}:` + [...li.querySelectorAll("ul li")].map((r) => r.textContent).join(",")));
    const reasonsOf = (id) => reply.stages.find((s) => s.stage_id === id).loss_reasons
        .map((r) => `${r.name}: ${r.count}`).join(",");
    await check("the worst stages with their loss reasons",
        reply.worst_stages.map((w) => `${w.stage_id}:${reasonsOf(w.stage_id)}`).join(" | "),
        worst.map(clean).join(" | "));

    // a wider period through the pickers
    const from = new Date(Date.now() - 120 * 86400e3).toISOString().slice(0, 10);
    await page.fill("#funnel-form input[name=from]", from);
    await page.click("#funnel-form button[type=submit]");
    await page.waitForSelector(`#funnel-stages[data-from="${from}"]`);
    await compareFunnel("period from the picker");
}

async function checkManagers() {
    await page.waitForSelector("#managers-table td[data-col=focus]");
    const focus = await apiOk("/managers/1/focus");
    const distribution = await apiOk("/distribution");
    const first = distribution.managers.find((m) => m.manager_id === 1);
    const row = page.locator('#managers-table tr[data-manager="1"]');

    const cell = row.locator("td[data-col=focus]");
    const progress = clean(await cell.locator("[data-field=progress]").textContent());
    await check("manager 1's focus progress (done/total of the active session)",
        `${focus.done}/${focus.total} ${focus.done} из ${focus.total}`,
        `${await attr(cell, "data-done")}/${await attr(cell, "data-total")} ${progress}`);

    const state = row.locator("td[data-col=distribution]");
    const shown = [await attr(state, "data-eligible"), await attr(state, "data-reason"), clean(await state.textContent())];
    await check("manager 1's distribution state", `${first.eligible}:${first.reason}:в фокусе`, shown.join(":"));

    const outOfFocus = await page.locator('#managers-table td[data-col=focus][data-state="none"]').count();
    const managers = distribution.managers.filter((m) => m.role === "manager").length;
    await check("the other managers are shown out of focus", String(managers - 1), String(outOfFocus));
}

async function reviewItems() {
    return page.$$eval("#review-list li.review", (items) => items.map((li) => ({
        id: Number(li.dataset.reviewId),
        deal: Number(li.dataset.dealId),
        lostBy: li.querySelector("[data-field=lost_by]").textContent,
        reason: li.querySelector("[data-field=loss_reason]").textContent,
    })));
}

const reviewItem = (id) => page.locator(`#review-list li[data-review-id="${id}"]`);
const reviewError = (id) => textAppears(`#review-list li[data-review-id="${id}"] p.error`);

async function checkReviews() {
    const pending = (await apiOk("/rejection-control/reviews?state=pending")).items;
    const managers = new Map((await apiOk("/managers?limit=500")).items.map((m) => [m.id, m.name]));
    const reasons = new Map((await apiOk("/loss-reasons?limit=500")).items.map((r) => [r.id, r.name]));
    const afterColon = (shown) => clean(shown).split(": ")[1];
    await check("the pending reviews with deal, lost-by manager and reason",
        pending.map((r) => `${r.deal_id}:${managers.get(r.lost_by_manager_id)}:${reasons.get(r.loss_reason_id)}`)
            .join(" | "),
        (await reviewItems()).map((r) => `${r.deal}:${afterColon(r.lostBy)}:${afterColon(r.reason)}`).join(" | "));
    if (pending.length < 2) throw new Error(`the demo has ${pending.length} pending reviews, the test needs 2`);
    const [toReturn, decidedElsewhere] = pending;

    // an API error is shown next to the action: the second review is decided behind the page's back
    const decision = { method: "POST", body: { decision: "confirm" } };
    await apiOk(`/rejection-control/reviews/${decidedElsewhere.id}/decision`, decision);
    const again = await api(`/rejection-control/reviews/${decidedElsewhere.id}/decision`, decision);
    await reviewItem(decidedElsewhere.id).locator("button[data-action=confirm]").click();
    await check("an API error (problem+json detail) is shown next to the action",
        `${again.status} ${again.body.detail}`, `${again.status} ${await reviewError(decidedElsewhere.id)}`);

    // return the first through the page: the picker, a refused empty note, then the note
    const item = reviewItem(toReturn.id);
    await item.locator("button[data-action=return]").click();
    await check("the manager picker defaults to the lost-by manager",
        String(toReturn.lost_by_manager_id), await item.locator("select[name=manager_id]").inputValue());
    await item.locator("form button[type=submit]").click();
    const refused = await reviewError(toReturn.id);
    const stillPending = (await apiOk(`/rejection-control/reviews/${toReturn.id}`)).state;
    await check("a return without a note is refused and sends nothing", "true pending",
        `${refused.includes("совет")} ${stillPending}`);

    await item.locator("textarea[name=note]").fill(RETURN_NOTE);
    await item.locator("form button[type=submit]").click();
    await item.waitFor({ state: "detached" });
    const left = (await reviewItems()).map((r) => r.id);
    await check("the returned review leaves the queue", "false", String(left.includes(toReturn.id)));
    await check("the queue's count follows", `(${left.length})`, await text("#reviews-count"));
    emit("value", "return_review_id", toReturn.id);
    emit("value", "return_deal_id", toReturn.deal_id);
    emit("value", "return_manager_id", toReturn.lost_by_manager_id);
    emit("value", "return_note", RETURN_NOTE);
    await screenshot(join(env.WORK, "after-return.png"));
}

async function checkLanguage() {
    const labels = async () => [
        await page.getAttribute("html", "lang"),
        await text("#checklist-title"),
        await text("#funnel-title"),
        await text("#reviews-title span"),
        clean(await page.locator('#checklist-table th[data-kpi="outgoing_calls"]')
            .evaluate((th) => th.firstChild.textContent)),
    ].join("|");
    await page.click("#lang-toggle");
    await check("switching to English shows English labels",
        "en|Weekly checklist|Funnel|Rejection control|Outgoing calls", await labels());

    await page.reload();
    await page.waitForSelector("#checklist-table td[data-kpi]");
    await check("after a reload the key and the language are remembered (sessionStorage)",
        "Weekly checklist", await text("#checklist-title"));

    await page.click("#lang-toggle");
    await check("and back to Russian", "ru|Недельный чек-лист|Воронка|Контроль отказов|Исходящие звонки",
        await labels());
}

async function checkSignOut() {
    await page.click("#sign-out");
    await page.waitForSelector("#sign-in:not([hidden])");
    const key = await page.evaluate(() => sessionStorage.getItem("salesops.api_key"));
    await check("sign out forgets the key", "null true", `${key} ${await page.isHidden("#dashboard")}`);
}

async function checkReadonly() {
    await signInAs(env.READONLY_KEY);
    const cells = await page.locator("#checklist-table td[data-kpi]").count();
    await check("a read-only key sees the checklist", "true", String(cells > 0));

    const first = page.locator("#review-list li.review").first();
    await first.locator("button[data-action=confirm]").click();
    await page.waitForSelector("#reviews-readonly:not([hidden])");
    const shown = clean(await first.locator("p.error").textContent());
    const enabled = await page.locator("#review-list button[data-action]:enabled").count();
    await check("a read-only key's decision answers 403: shown, and the buttons are disabled", "true 0",
        `${shown.includes("readonly")} ${enabled}`);

    // a key deleted while the page is open: the next call is 401 and the page returns to the sign-in form
    await apiOk(`/api-keys/${env.READONLY_KEY_ID}`, { method: "DELETE" });
    await page.waitForTimeout(1100); // key checks may be cached for up to 1 s
    await page.click("#reviews-reload");
    await page.waitForSelector("#sign-in:not([hidden])");
    await check("a 401 anywhere returns to the sign-in form with a message", "true",
        String((await text("#sign-in-error")).includes("Войдите снова")));
}

// --------------------------------------------------------------------------------------------- main

async function main() {
    const browser = await chromium.launch({
        executablePath: env.CHROMIUM,
        headless: true,
        args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
    });
    try {
        const context = await browser.newContext({ locale: "ru-RU", viewport: { width: 1400, height: 1000 } });
        page = await context.newPage();
        page.setDefaultTimeout(STEP_TIMEOUT_MS);
        page.on("pageerror", (error) => pageErrors.push(`pageerror: ${error.message}`));
        page.on("console", (message) => {
            // "Failed to load resource" echoes an HTTP status the page expects and handles (404 focus, 401, 403)
            if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
                pageErrors.push(message.text());
            }
        });
        await step("sign in", checkSignIn);
        await step("checklist", checkChecklist);
        await step("funnel", checkFunnel);
        await step("managers", checkManagers);
        await step("rejection-control queue", checkReviews);
        await step("language", checkLanguage);
        await step("sign out", checkSignOut);
        await step("read-only key", checkReadonly);
        await check("no script errors or CSP violations in the console", "none", pageErrors.join(" ; ") || "none");
    } finally {
        await check("the browser run completed every step", "true", String(completed));
        await browser.close();
    }
}

main().catch((error) => {
    emit("check", "the browser driver runs", "no error", `error: ${error.message.split("\n")[0]}`);
    process.exitCode = 1;
});
