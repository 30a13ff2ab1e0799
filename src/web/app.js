/* salesops: the head of sales' dashboard. Plain JS, no framework, no build step.
 *
 * Rules the page keeps (the server's CSP enforces the first two):
 * - no inline scripts, handlers or style attributes: handlers via addEventListener, widths via the CSSOM;
 * - text from the API reaches the DOM only as text (el() and textContent), never through innerHTML;
 * - the API key lives in sessionStorage only: never localStorage, a cookie or the URL.
 */
"use strict";

(() => {
    // ============================================================================================ labels

    const I18N = {
        ru: {
            app_title: "Панель руководителя отдела продаж",
            skip_to_content: "К содержимому",
            lang_switch: "English",
            sign_in_title: "Вход",
            sign_in_hint: "Введите API-ключ администратора, руководителя или ключ только для чтения. " +
                "Ключ хранится только в этой вкладке браузера.",
            api_key: "API-ключ",
            sign_in: "Войти",
            sign_out: "Выйти",
            err_key_required: "Введите ключ.",
            err_key_unknown: "Ключ не подошёл: такого ключа нет или он удалён.",
            err_manager_key: "Это ключ менеджера: панель и аналитика доступны только ключам администратора, " +
                "руководителя и ключам только для чтения (ответ 403).",
            err_session_expired: "Ключ больше не действует. Войдите снова.",
            err_network: "Сервер не отвечает. Проверьте соединение и попробуйте ещё раз.",
            err_status: "Ошибка {status}",
            err_analytics_forbidden: "Этому ключу аналитика недоступна (403).",
            err_weeks: "Число недель: от 1 до 52.",
            err_date: "Укажите дату.",
            err_period: "Дата «по» раньше даты «с».",
            loading: "Загрузка…",
            show: "Показать",
            reload: "Обновить",
            none: "—",

            checklist_title: "Недельный чек-лист",
            week_end: "Неделя, включающая дату",
            weeks_count: "Недель",
            shown_week: "Неделя",
            flag_ok: "в норме",
            flag_warn: "близко к границе",
            flag_bad: "хуже цели",
            verdict_ok: "в норме",
            verdict_warn: "близко к границе цели",
            verdict_bad: "хуже цели",
            manager: "Менеджер",
            team: "Команда",
            group_calls: "Звонки",
            group_deals: "Сделки",
            group_missed: "Упущенные сделки",
            group_tasks: "Задачи",
            target_min: "цель ≥ {value}",
            target_max: "цель ≤ {value}",
            delta_title: "изменение к предыдущей неделе",
            delta_unknown: "нет данных для сравнения с предыдущей неделей",
            findings_title: "Выводы за последнюю неделю",
            findings_none: "Замечаний нет.",
            checklist_empty: "Нет менеджеров для отчёта.",

            kpi_talk_time_s: "Время разговоров",
            kpi_outgoing_calls: "Исходящие звонки",
            kpi_deals_created: "Новые сделки",
            kpi_won: "Выиграно",
            kpi_won_revenue: "Выручка",
            kpi_lost: "Проиграно",
            kpi_conversion: "Конверсия",
            kpi_close_rate: "Доля выигранных",
            kpi_deals_without_tasks: "Сделки без задач",
            kpi_deals_with_overdue_tasks: "Сделки с просроченной задачей",
            kpi_missed_deals: "Всего упущено",
            kpi_tasks_due: "Задач к сроку",
            kpi_tasks_on_time: "Сделано в срок",
            kpi_on_time_share: "Доля в срок",
            kpi_overdue_total_s: "Просрочка, всего",
            kpi_overdue_avg_s: "Просрочка, в среднем",

            funnel_title: "Воронка",
            pipeline: "Воронка",
            from: "С",
            to: "По",
            pipelines_none: "В аккаунте нет воронок.",
            total_created: "Создано сделок",
            total_won: "Выиграно",
            total_lost: "Проиграно",
            total_conversion: "Конверсия",
            stage_entered: "Вошло",
            stage_advanced: "Прошло дальше",
            stage_lost: "Потеряно",
            stage_in_stage: "Остались",
            stage_conversion: "Конверсия",
            stages_none: "В воронке нет открытых этапов.",
            worst_stages_title: "Где теряем больше всего",
            worst_line: "{name}: потеряно {lost} ({share})",
            worst_none: "За период потерь нет.",
            reason_unknown: "Причина не указана",

            reviews_title: "Контроль отказов",
            decisions_forbidden: "Этот ключ не может принимать решения: доступен только просмотр.",
            reviews_none: "Нет отказов, ждущих решения.",
            review_deal: "Сделка #{id}",
            review_lost_by: "Проиграл(а): {name}",
            review_reason: "Причина: {name}",
            review_lost_at: "Проиграна {time}",
            confirm: "Подтвердить отказ",
            return: "Вернуть в работу",
            return_note: "Совет менеджеру (обязательно)",
            return_manager: "Кому вернуть",
            return_submit: "Вернуть сделку",
            cancel: "Отмена",
            note_required: "Напишите совет менеджеру: без него сделку не вернуть.",
            confirmed_msg: "Отказ по сделке #{id} подтверждён.",
            returned_msg: "Сделка #{id} возвращена: {name}.",

            managers_title: "Менеджеры",
            col_manager: "Менеджер",
            col_role: "Роль",
            col_weight: "Вес",
            col_distribution: "Распределение лидов",
            col_focus: "Фокус",
            role_manager: "менеджер",
            role_head: "руководитель",
            role_admin: "администратор",
            eligible: "получает лиды",
            reason_not_a_manager: "не менеджер",
            reason_pool_user: "общий пользователь amoCRM",
            reason_inactive: "неактивен",
            reason_disabled: "распределение выключено",
            reason_in_focus: "в фокусе",
            reason_off_hours: "нерабочее время",
            focus_none: "не в фокусе",
            focus_progress: "{done} из {total}",
            focus_until: "до {time}",
            managers_none: "Менеджеров нет.",

            unit_h: "ч",
            unit_min: "мин",
            unit_s: "с",
            unit_pp: "п.п.",
        },
        en: {
            app_title: "Head of sales dashboard",
            skip_to_content: "Skip to content",
            lang_switch: "Русский",
            sign_in_title: "Sign in",
            sign_in_hint: "Enter an admin, head of sales or read-only API key. " +
                "The key is kept in this browser tab only.",
            api_key: "API key",
            sign_in: "Sign in",
            sign_out: "Sign out",
            err_key_required: "Enter a key.",
            err_key_unknown: "This key does not work: it does not exist or was deleted.",
            err_manager_key: "This is a manager's key: the dashboard and analytics are for admin, head of sales " +
                "and read-only keys only (answer 403).",
            err_session_expired: "The key no longer works. Please sign in again.",
            err_network: "The server does not answer. Check the connection and try again.",
            err_status: "Error {status}",
            err_analytics_forbidden: "This key may not see analytics (403).",
            err_weeks: "Weeks: from 1 to 52.",
            err_date: "Enter a date.",
            err_period: "The \"to\" date is before the \"from\" date.",
            loading: "Loading…",
            show: "Show",
            reload: "Reload",
            none: "—",

            checklist_title: "Weekly checklist",
            week_end: "Week containing",
            weeks_count: "Weeks",
            shown_week: "Week",
            flag_ok: "on target",
            flag_warn: "near the limit",
            flag_bad: "off target",
            verdict_ok: "on target",
            verdict_warn: "near the limit of the target",
            verdict_bad: "off target",
            manager: "Manager",
            team: "Team",
            group_calls: "Calls",
            group_deals: "Deals",
            group_missed: "Missed deals",
            group_tasks: "Tasks",
            target_min: "target ≥ {value}",
            target_max: "target ≤ {value}",
            delta_title: "change from the previous week",
            delta_unknown: "no data to compare with the previous week",
            findings_title: "Findings for the last week",
            findings_none: "Nothing to report.",
            checklist_empty: "No managers to report on.",

            kpi_talk_time_s: "Talk time",
            kpi_outgoing_calls: "Outgoing calls",
            kpi_deals_created: "New deals",
            kpi_won: "Won",
            kpi_won_revenue: "Won revenue",
            kpi_lost: "Lost",
            kpi_conversion: "Conversion",
            kpi_close_rate: "Close rate",
            kpi_deals_without_tasks: "Deals without tasks",
            kpi_deals_with_overdue_tasks: "Deals with an overdue task",
            kpi_missed_deals: "Missed deals in all",
            kpi_tasks_due: "Tasks due",
            kpi_tasks_on_time: "Done on time",
            kpi_on_time_share: "On-time share",
            kpi_overdue_total_s: "Overdue, total",
            kpi_overdue_avg_s: "Overdue, average",

            funnel_title: "Funnel",
            pipeline: "Pipeline",
            from: "From",
            to: "To",
            pipelines_none: "The account has no pipelines.",
            total_created: "Deals created",
            total_won: "Won",
            total_lost: "Lost",
            total_conversion: "Conversion",
            stage_entered: "Entered",
            stage_advanced: "Advanced",
            stage_lost: "Lost",
            stage_in_stage: "Still there",
            stage_conversion: "Conversion",
            stages_none: "The pipeline has no open stages.",
            worst_stages_title: "Where deals are lost most",
            worst_line: "{name}: {lost} lost ({share})",
            worst_none: "No losses in the period.",
            reason_unknown: "No reason given",

            reviews_title: "Rejection control",
            decisions_forbidden: "This key may not decide: view only.",
            reviews_none: "No losses are waiting for a decision.",
            review_deal: "Deal #{id}",
            review_lost_by: "Lost by {name}",
            review_reason: "Reason: {name}",
            review_lost_at: "Lost {time}",
            confirm: "Confirm the loss",
            return: "Return to work",
            return_note: "Advice for the manager (required)",
            return_manager: "Return to",
            return_submit: "Return the deal",
            cancel: "Cancel",
            note_required: "Write advice for the manager: a deal is not returned without it.",
            confirmed_msg: "The loss of deal #{id} is confirmed.",
            returned_msg: "Deal #{id} returned to {name}.",

            managers_title: "Managers",
            col_manager: "Manager",
            col_role: "Role",
            col_weight: "Weight",
            col_distribution: "Lead distribution",
            col_focus: "Focus",
            role_manager: "manager",
            role_head: "head of sales",
            role_admin: "admin",
            eligible: "gets leads",
            reason_not_a_manager: "not a manager",
            reason_pool_user: "amoCRM pool user",
            reason_inactive: "inactive",
            reason_disabled: "distribution off",
            reason_in_focus: "in focus",
            reason_off_hours: "off hours",
            focus_none: "not in focus",
            focus_progress: "{done} of {total}",
            focus_until: "until {time}",
            managers_none: "No managers.",

            unit_h: "h",
            unit_min: "min",
            unit_s: "s",
            unit_pp: "pp",
        },
    };

    const LOCALES = { ru: "ru-RU", en: "en-GB" };

    /* The manager figures of the checklist, in the API's order, with how to show them. */
    const KPIS = [
        { key: "talk_time_s", kind: "duration", group: "calls" },
        { key: "outgoing_calls", kind: "count", group: "calls" },
        { key: "deals_created", kind: "count", group: "deals" },
        { key: "won", kind: "count", group: "deals" },
        { key: "won_revenue", kind: "money", group: "deals" },
        { key: "lost", kind: "count", group: "deals" },
        { key: "conversion", kind: "ratio", group: "deals" },
        { key: "close_rate", kind: "ratio", group: "deals" },
        { key: "deals_without_tasks", kind: "count", group: "missed" },
        { key: "deals_with_overdue_tasks", kind: "count", group: "missed" },
        { key: "missed_deals", kind: "count", group: "missed" },
        { key: "tasks_due", kind: "count", group: "tasks" },
        { key: "tasks_on_time", kind: "count", group: "tasks" },
        { key: "on_time_share", kind: "ratio", group: "tasks" },
        { key: "overdue_total_s", kind: "duration", group: "tasks" },
        { key: "overdue_avg_s", kind: "duration", group: "tasks" },
    ];
    const KPI_KIND = Object.fromEntries(KPIS.map((kpi) => [kpi.key, kpi.kind]));
    const FLAGS = ["ok", "warn", "bad"];

    const STORAGE_KEY = "salesops.api_key";
    const STORAGE_LANG = "salesops.lang";
    const DEFAULT_WEEKS = 4;
    const SECTIONS = ["checklist", "funnel", "reviews", "managers"]; // ids of the <section>s

    // ============================================================================================= state

    /* What one signed-in session has loaded and shown; sign-out starts again from this. */
    function freshData() {
        return {
            account: null,
            managers: [],
            pipelines: [],
            lossReasons: new Map(),
            targets: {},
            checklist: null,
            weekIndex: 0,
            funnel: null,
            reviews: [],
            reviewsLoaded: false,
            deals: new Map(),
            reviewUi: new Map(), // review id -> {formOpen, note, managerId, error, busy}
            decisionsForbidden: false,
            distribution: null,
            focus: new Map(), // manager id -> active session, or null
            status: {}, // section id -> {message: () => string, error: bool}
        };
    }

    const state = {
        lang: "ru",
        key: null,
        session: 0, // bumped on sign-in and sign-out: replies to an earlier session are dropped
        loads: {}, // section id -> number of its latest load: replies to an earlier load are dropped
        ...freshData(),
    };

    // =========================================================================================== helpers

    const $ = (selector, root = document) => root.querySelector(selector);

    function t(name, vars = {}) {
        const text = I18N[state.lang][name] ?? I18N.ru[name] ?? name;
        return text.replace(/\{(\w+)\}/g, (_, key) => (key in vars ? String(vars[key]) : `{${key}}`));
    }

    /* Builds an element. Strings among the children become text nodes; attribute values are set as text. */
    function el(tag, attrs = {}, children = []) {
        const node = document.createElement(tag);
        for (const [name, value] of Object.entries(attrs)) {
            if (value === null || value === undefined || value === false) continue;
            if (name === "text") node.textContent = String(value);
            else if (name === "className") node.className = value;
            else if (name.startsWith("on") && typeof value === "function") {
                node.addEventListener(name.slice(2), value);
            } else node.setAttribute(name, value === true ? "" : String(value));
        }
        for (const child of [].concat(children)) {
            if (child !== null && child !== undefined && child !== false) node.append(child);
        }
        return node;
    }

    function withQuery(path, params) {
        const query = new URLSearchParams();
        for (const [name, value] of Object.entries(params)) {
            if (value !== null && value !== undefined && value !== "") query.set(name, String(value));
        }
        const text = query.toString();
        return text ? `${path}${path.includes("?") ? "&" : "?"}${text}` : path;
    }

    // =============================================================================================== API

    class ApiError extends Error {
        constructor(status, { code = null, detail = null, errors = [], silent = false } = {}) {
            super(detail || code || `HTTP ${status}`);
            this.status = status;
            this.code = code;
            this.detail = detail;
            this.errors = errors;
            this.silent = silent; // already handled (signed out, or a reply for an older session)
        }
    }

    async function readJson(response) {
        const text = await response.text();
        if (!text) return null;
        try {
            return JSON.parse(text);
        } catch {
            return null;
        }
    }

    /* One request with the given key; resolves to {status, data} whatever the status, rejects only when
     * there is no answer at all. */
    async function request(path, { method = "GET", body, key = state.key } = {}) {
        const headers = { Accept: "application/json", Authorization: `Bearer ${key}` };
        const init = { method, headers, cache: "no-store", credentials: "omit" };
        if (body !== undefined) {
            headers["Content-Type"] = "application/json";
            init.body = JSON.stringify(body);
        }
        let response;
        try {
            response = await fetch(`/api/v1${path}`, init);
        } catch {
            throw new ApiError(0, { code: "network", detail: t("err_network") });
        }
        return { status: response.status, data: await readJson(response) };
    }

    function problem(status, data) {
        const body = data && typeof data === "object" ? data : {};
        return new ApiError(status, {
            code: body.code ?? null,
            detail: body.detail ?? body.title ?? null,
            errors: Array.isArray(body.errors) ? body.errors : [],
        });
    }

    /* The page's one way to call the API: 2xx -> the parsed body; 401 -> back to the sign-in form;
     * any other status -> ApiError with the problem+json fields. */
    async function api(path, options = {}) {
        const session = state.session;
        const { status, data } = await request(path, options);
        if (session !== state.session) throw new ApiError(status, { silent: true });
        if (status === 401) {
            signOut(t("err_session_expired"));
            throw new ApiError(401, { code: "unauthorized", silent: true });
        }
        if (status < 200 || status > 299) throw problem(status, data);
        return data;
    }

    /* Every item of a list route, following next_cursor (bounded, as a safeguard). */
    async function apiList(path) {
        const items = [];
        let cursor = null;
        for (let page = 0; page < 20; page++) {
            const reply = await api(withQuery(path, { limit: 500, cursor }));
            items.push(...reply.items);
            cursor = reply.next_cursor;
            if (!cursor) break;
        }
        return items;
    }

    /* The text to show for a failed call: the problem's detail, plus field messages of a 422. */
    function describeError(error) {
        if (!(error instanceof ApiError)) return String(error && error.message ? error.message : error);
        if (error.status === 0) return error.detail;
        const fields = error.errors.map((e) => [e.field, e.message].filter(Boolean).join(": "));
        const main = error.detail || t("err_status", { status: error.status });
        return [main, ...fields].join(" — ");
    }

    // ======================================================================================= formatting

    const locale = () => LOCALES[state.lang];
    const numberFormat = (options) => new Intl.NumberFormat(locale(), options);

    function formatCount(value) {
        return numberFormat({ maximumFractionDigits: 0 }).format(value);
    }

    function formatRatio(value) {
        return numberFormat({ style: "percent", maximumFractionDigits: 1 }).format(value);
    }

    function formatDuration(seconds) {
        const s = Math.round(seconds);
        if (s < 60) return `${s} ${t("unit_s")}`;
        const hours = Math.floor(s / 3600);
        const minutes = Math.floor((s % 3600) / 60);
        if (hours === 0) return `${minutes} ${t("unit_min")}`;
        if (minutes === 0) return `${formatCount(hours)} ${t("unit_h")}`;
        return `${formatCount(hours)} ${t("unit_h")} ${minutes} ${t("unit_min")}`;
    }

    function formatValue(kind, value) {
        if (value === null || value === undefined) return t("none");
        if (kind === "ratio") return formatRatio(value);
        if (kind === "duration") return formatDuration(value);
        return formatCount(value);
    }

    /* "▲ 2", "▼ 15 мин", "▲ 12,5 п.п.", "– 0"; "–" alone when there is nothing to compare with. */
    function formatDelta(kind, delta) {
        if (delta === null || delta === undefined) return "–";
        const arrow = delta > 0 ? "▲" : delta < 0 ? "▼" : "–";
        const size = Math.abs(delta);
        let amount;
        if (kind === "ratio") {
            // ratios have at most 4 decimals: scale through an integer so that 0.0835 shows as 8.4, not 8.3
            const points = Math.round(size * 10000) / 100;
            amount = `${numberFormat({ maximumFractionDigits: 1 }).format(points)} ${t("unit_pp")}`;
        } else if (kind === "duration") {
            amount = formatDuration(size);
        } else {
            amount = formatCount(size);
        }
        return `${arrow} ${amount}`;
    }

    function timeZone() {
        return state.account?.timezone || undefined;
    }

    function formatDateTime(iso) {
        if (!iso) return t("none");
        const options = { dateStyle: "medium", timeStyle: "short", timeZone: timeZone() };
        try {
            return new Intl.DateTimeFormat(locale(), options).format(new Date(iso));
        } catch {
            return new Intl.DateTimeFormat(locale(), { ...options, timeZone: undefined }).format(new Date(iso));
        }
    }

    /* A calendar date (YYYY-MM-DD) as "16 нояб." / "16 Nov", with the year when asked. */
    function formatDay(day, withYear = false) {
        const options = { day: "numeric", month: "short", timeZone: "UTC" };
        if (withYear) options.year = "numeric";
        return new Intl.DateTimeFormat(locale(), options).format(new Date(`${day}T00:00:00Z`));
    }

    // ============================================================================================ dates

    /* Today's date (YYYY-MM-DD) in the account's time zone. */
    function today() {
        const options = { year: "numeric", month: "2-digit", day: "2-digit" };
        let format;
        try {
            format = new Intl.DateTimeFormat("en-CA", { ...options, timeZone: timeZone() });
        } catch {
            format = new Intl.DateTimeFormat("en-CA", options); // a zone this browser does not know
        }
        const parts = Object.fromEntries(format.formatToParts(new Date()).map((p) => [p.type, p.value]));
        return `${parts.year}-${parts.month}-${parts.day}`;
    }

    function addDays(day, count) {
        const date = new Date(`${day}T00:00:00Z`);
        date.setUTCDate(date.getUTCDate() + count);
        return date.toISOString().slice(0, 10);
    }

    function mondayOf(day) {
        const weekday = (new Date(`${day}T00:00:00Z`).getUTCDay() + 6) % 7; // Monday = 0
        return addDays(day, -weekday);
    }

    const isDay = (text) => /^\d{4}-\d{2}-\d{2}$/.test(text);

    // ================================================================================ section status

    function setStatus(section, message, error = false) {
        state.status[section] = message ? { message, error } : null;
        renderStatus(section);
    }

    function renderStatus(section) {
        const node = $(`#${section} .section-status`);
        if (!node) return;
        const status = state.status[section];
        node.textContent = status ? status.message() : "";
        node.classList.toggle("is-error", Boolean(status && status.error));
        node.setAttribute("role", status && status.error ? "alert" : "status");
    }

    function setError(section, error) {
        if (error.silent) return;
        const analytics = error.status === 403 && (section === "checklist" || section === "funnel");
        const message = () => (analytics ? `${t("err_analytics_forbidden")} ` : "") + describeError(error);
        setStatus(section, message, true);
    }

    /* Runs one load of a section; a reply to an older load of the same section is dropped. */
    async function load(section, work) {
        const ticket = (state.loads[section] = (state.loads[section] || 0) + 1);
        const isCurrent = () => ticket === state.loads[section];
        setStatus(section, () => t("loading"));
        $(`#${section}`).setAttribute("aria-busy", "true");
        try {
            await work(isCurrent);
            if (isCurrent()) setStatus(section, null);
        } catch (error) {
            if (isCurrent()) setError(section, error);
        } finally {
            if (isCurrent()) $(`#${section}`).removeAttribute("aria-busy");
        }
    }

    // ========================================================================================== sign-in

    function showSignIn(message = "") {
        $("#dashboard").hidden = true;
        $("#sign-out").hidden = true;
        $("#account-name").hidden = true;
        $("#sign-in").hidden = false;
        $("#sign-in-error").textContent = message;
        $("#api-key").value = "";
        $("#api-key").focus();
    }

    function showDashboard() {
        $("#sign-in").hidden = true;
        $("#dashboard").hidden = false;
        $("#sign-out").hidden = false;
        const name = $("#account-name");
        name.textContent = state.account.name;
        name.hidden = false;
    }

    function signOut(message = "") {
        state.session += 1;
        sessionStorage.removeItem(STORAGE_KEY);
        Object.assign(state, { key: null }, freshData());
        renderAll();
        showSignIn(message);
    }

    /* Checks a key with GET /account: 401 unknown, 403 a manager's key (the only role /account refuses). */
    async function signIn(key) {
        const { status, data } = await request("/account", { key });
        if (status === 401) return t("err_key_unknown");
        if (status === 403) return t("err_manager_key");
        if (status !== 200) return describeError(problem(status, data));
        state.session += 1;
        state.key = key;
        state.account = data;
        sessionStorage.setItem(STORAGE_KEY, key);
        showDashboard();
        loadDashboard();
        return "";
    }

    async function onSignInSubmit(event) {
        event.preventDefault();
        const key = $("#api-key").value.trim();
        const error = $("#sign-in-error");
        if (!key) {
            error.textContent = t("err_key_required");
            return;
        }
        const button = $("#sign-in-form button[type=submit]");
        button.disabled = true;
        error.textContent = "";
        try {
            error.textContent = await signIn(key);
        } catch (e) {
            error.textContent = describeError(e);
        } finally {
            button.disabled = false;
        }
    }

    // ========================================================================================= language

    function applyLanguage() {
        document.documentElement.lang = state.lang;
        document.title = `salesops · ${t("app_title")}`;
        for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
        const toggle = $("#lang-toggle");
        toggle.textContent = t("lang_switch");
        toggle.lang = state.lang === "ru" ? "en" : "ru";
        if (state.account) renderAll();
    }

    function toggleLanguage() {
        state.lang = state.lang === "ru" ? "en" : "ru";
        sessionStorage.setItem(STORAGE_LANG, state.lang);
        applyLanguage();
    }

    function renderAll() {
        renderChecklist();
        renderFunnel();
        renderReviews();
        renderManagers();
        for (const section of SECTIONS) renderStatus(section);
    }

    // ======================================================================================== dashboard

    async function loadDashboard() {
        const session = state.session;
        setDefaultPickers();
        await loadReference();
        if (session !== state.session) return; // signed out meanwhile
        fillPipelinePicker();
        loadChecklist();
        loadFunnel();
        loadReviews();
        loadManagers();
    }

    /* Managers, pipelines, loss reasons and targets: names for the sections. A missing piece only costs
     * names (ids are shown instead), so failures here are not fatal. */
    async function loadReference() {
        const [managers, pipelines, reasons, targets] = await Promise.allSettled([
            apiList("/managers"),
            apiList("/pipelines"),
            apiList("/loss-reasons"),
            api("/analytics/targets"),
        ]);
        if (managers.status === "fulfilled") state.managers = managers.value;
        if (pipelines.status === "fulfilled") state.pipelines = pipelines.value;
        if (reasons.status === "fulfilled") state.lossReasons = new Map(reasons.value.map((r) => [r.id, r.name]));
        if (targets.status === "fulfilled") state.targets = targets.value || {};
    }

    function managerName(id) {
        if (id === null || id === undefined) return t("none");
        const manager = state.managers.find((m) => m.id === id);
        return manager ? manager.name : `#${id}`;
    }

    function setDefaultPickers() {
        const day = today();
        const checklist = $("#checklist-form");
        checklist.end.value = day;
        checklist.weeks.value = String(DEFAULT_WEEKS);
        const funnel = $("#funnel-form");
        funnel.from.value = addDays(mondayOf(day), -7 * (DEFAULT_WEEKS - 1));
        funnel.to.value = day;
    }

    function fillPipelinePicker() {
        const select = $("#funnel-form").pipeline_id;
        select.replaceChildren(...state.pipelines.map((p) => el("option", { value: p.id, text: p.name })));
    }

    // ======================================================================================== checklist

    function readChecklistForm() {
        const form = $("#checklist-form");
        const weeks = Number(form.weeks.value);
        if (!Number.isInteger(weeks) || weeks < 1 || weeks > 52) return { error: "err_weeks" };
        if (!isDay(form.end.value)) return { error: "err_date" };
        return { weeks, end: form.end.value };
    }

    function loadChecklist() {
        const query = readChecklistForm();
        if (query.error) {
            setStatus("checklist", () => t(query.error), true);
            return;
        }
        load("checklist", async (isCurrent) => {
            const reply = await api(withQuery("/analytics/checklist", query));
            if (!isCurrent()) return;
            state.checklist = reply;
            state.weekIndex = reply.weeks.length - 1;
            renderChecklist();
        });
    }

    function renderChecklist() {
        const reply = state.checklist;
        const table = $("#checklist-table");
        const select = $("#checklist-week");
        if (!reply || reply.weeks.length === 0) {
            table.replaceChildren();
            select.replaceChildren();
            $("#findings").replaceChildren();
            return;
        }
        select.replaceChildren(...reply.weeks.map((week, index) => el("option", {
            value: index,
            selected: index === state.weekIndex,
            text: `${formatDay(week.week_start)} – ${formatDay(week.week_end, true)}`,
        })));
        const week = reply.weeks[state.weekIndex];
        table.dataset.weekStart = week.week_start;
        table.dataset.weekEnd = week.week_end;
        table.replaceChildren(checklistCaption(week), checklistHead(), checklistBody(week), checklistFoot(week));
        renderFindings();
    }

    function checklistCaption(week) {
        const text = `${t("checklist_title")}: ${week.week_start} – ${week.week_end}`;
        return el("caption", { className: "visually-hidden", text });
    }

    function checklistHead() {
        const groups = [];
        for (const kpi of KPIS) {
            const last = groups[groups.length - 1];
            if (last && last.group === kpi.group) last.span += 1;
            else groups.push({ group: kpi.group, span: 1 });
        }
        const groupRow = el("tr", {}, [
            el("th", { className: "corner", rowspan: 2, scope: "col", text: t("manager") }),
            ...groups.map((g) => el("th", { colspan: g.span, scope: "colgroup", text: t(`group_${g.group}`) })),
        ]);
        const kpiRow = el("tr", {}, KPIS.map((kpi) => el("th", { scope: "col", "data-kpi": kpi.key }, [
            t(`kpi_${kpi.key}`),
            targetLabel(kpi),
        ])));
        return el("thead", {}, [groupRow, kpiRow]);
    }

    function targetLabel(kpi) {
        const target = state.targets[kpi.key];
        if (!target) return null;
        const value = formatValue(kpi.kind, target.target);
        const label = target.direction === "max" ? "target_max" : "target_min";
        return el("span", { className: "target", text: t(label, { value }) });
    }

    function checklistBody(week) {
        if (week.managers.length === 0) {
            return el("tbody", {}, el("tr", {}, el("td", { colspan: KPIS.length + 1, text: t("checklist_empty") })));
        }
        return el("tbody", {}, week.managers.map((row) => checklistRow(row, row.manager_id, row.name)));
    }

    function checklistFoot(week) {
        const row = checklistRow(week.team, "team", t("team"));
        row.classList.add("team-row");
        return el("tfoot", {}, row);
    }

    function checklistRow(row, id, name) {
        return el("tr", { "data-manager": id }, [
            el("th", { scope: "row", text: name }),
            ...KPIS.map((kpi) => kpiCell(row, id, kpi)),
        ]);
    }

    function kpiCell(row, id, kpi) {
        const value = row[kpi.key];
        const flag = FLAGS.includes(row.flags?.[kpi.key]) ? row.flags[kpi.key] : "none";
        const delta = row.delta?.[kpi.key];
        const hasDelta = delta !== null && delta !== undefined;
        return el("td", {
            className: `flag-${flag}`,
            "data-manager": id,
            "data-kpi": kpi.key,
            "data-flag": flag,
            "data-value": value ?? "",
        }, [
            el("span", { className: "value", text: formatValue(kpi.kind, value) }),
            el("span", {
                className: "delta",
                "data-delta": hasDelta ? delta : "",
                title: hasDelta ? t("delta_title") : t("delta_unknown"),
                text: formatDelta(kpi.kind, delta),
            }),
            flag === "none" ? null : el("span", { className: "visually-hidden", text: ` (${t(`verdict_${flag}`)})` }),
        ]);
    }

    function renderFindings() {
        const reply = state.checklist;
        const list = $("#findings");
        if (!reply) {
            list.replaceChildren();
            return;
        }
        if (reply.findings.length === 0) {
            list.replaceChildren(el("li", { className: "empty", text: t("findings_none") }));
            return;
        }
        const lastWeek = reply.weeks[reply.weeks.length - 1];
        list.replaceChildren(...reply.findings.map((finding) => findingItem(finding, lastWeek)));
    }

    /* The API writes findings in Russian; in English the same facts are put together from the figures. */
    function findingItem(finding, lastWeek) {
        const verdict = FLAGS.includes(finding.verdict) ? finding.verdict : "none";
        const attrs = { className: `flag-${verdict}`, "data-manager": finding.manager_id, "data-kpi": finding.kpi };
        if (state.lang === "ru") return el("li", { ...attrs, lang: "ru", text: finding.text });
        const row = lastWeek?.managers.find((m) => m.manager_id === finding.manager_id);
        const name = row ? row.name : managerName(finding.manager_id);
        const kind = KPI_KIND[finding.kpi] || "count";
        const label = I18N.en[`kpi_${finding.kpi}`] ? t(`kpi_${finding.kpi}`).toLowerCase() : finding.kpi;
        const value = formatValue(kind, finding.value);
        return el("li", { ...attrs, text: `${name}: ${label} ${value}, ${changeInWords(kind, finding.delta)}` });
    }

    function changeInWords(kind, delta) {
        if (delta === null || delta === undefined) return "no data for the week before";
        if (delta === 0) return "the same as the week before";
        const amount = formatDelta(kind, delta).slice(2); // without the arrow
        return `${delta > 0 ? "up" : "down"} ${amount} from the week before`;
    }

    // =========================================================================================== funnel

    function readFunnelForm() {
        const form = $("#funnel-form");
        const pipelineId = Number(form.pipeline_id.value);
        if (!pipelineId) return { error: "pipelines_none" };
        if (!isDay(form.from.value) || !isDay(form.to.value)) return { error: "err_date" };
        if (form.to.value < form.from.value) return { error: "err_period" };
        return { pipeline_id: pipelineId, from: form.from.value, to: form.to.value };
    }

    function loadFunnel() {
        const query = readFunnelForm();
        if (query.error) {
            state.funnel = null;
            renderFunnel();
            setStatus("funnel", () => t(query.error), query.error !== "pipelines_none");
            return;
        }
        load("funnel", async (isCurrent) => {
            const reply = await api(withQuery("/analytics/funnel", query));
            if (!isCurrent()) return;
            state.funnel = reply;
            renderFunnel();
        });
    }

    function renderFunnel() {
        const reply = state.funnel;
        if (!reply) {
            $("#funnel-totals").replaceChildren();
            $("#funnel-stages").replaceChildren();
            $("#worst-stages").replaceChildren();
            return;
        }
        $("#funnel-totals").replaceChildren(
            total("total_created", formatCount(reply.created)),
            total("total_won", formatCount(reply.won)),
            total("total_lost", formatCount(reply.lost)),
            total("total_conversion", formatValue("ratio", reply.conversion)),
        );
        renderStages(reply.stages);
        renderWorstStages(reply);
        $("#funnel-stages").dataset.from = reply.from;
        $("#funnel-stages").dataset.to = reply.to;
    }

    function total(label, value) {
        return el("div", {}, [el("dt", { text: t(label) }), el("dd", { text: value })]);
    }

    function renderStages(stages) {
        const list = $("#funnel-stages");
        if (stages.length === 0) {
            list.replaceChildren(el("li", { className: "muted", text: t("stages_none") }));
            return;
        }
        const widest = Math.max(...stages.map((s) => s.entered));
        list.replaceChildren(...stages.map((stage) => stageItem(stage, widest)));
    }

    function stageItem(stage, widest) {
        const bar = el("div", { className: "bar" });
        bar.style.width = `${widest > 0 ? (stage.entered / widest) * 100 : 0}%`;
        const figure = (label, value, key) =>
            el("span", { "data-figure": key }, [`${t(label)}: `, el("b", { text: value })]);
        return el("li", { className: "funnel-stage", "data-stage-id": stage.stage_id, "data-entered": stage.entered }, [
            el("div", { className: "stage-name", text: stage.name }),
            el("div", { className: "bar-track", "aria-hidden": "true" }, bar),
            el("div", { className: "stage-figures" }, [
                figure("stage_entered", formatCount(stage.entered), "entered"),
                figure("stage_advanced", formatCount(stage.advanced), "advanced"),
                figure("stage_lost", formatCount(stage.lost), "lost"),
                figure("stage_in_stage", formatCount(stage.in_stage), "in_stage"),
                figure("stage_conversion", formatValue("ratio", stage.conversion), "conversion"),
            ]),
        ]);
    }

    function renderWorstStages(reply) {
        const list = $("#worst-stages");
        if (reply.worst_stages.length === 0) {
            list.replaceChildren(el("li", { className: "muted", text: t("worst_none") }));
            return;
        }
        list.replaceChildren(...reply.worst_stages.map((worst) => {
            const stage = reply.stages.find((s) => s.stage_id === worst.stage_id);
            const reasons = (stage ? stage.loss_reasons : []).map((reason) => el("li", {
                "data-loss-reason-id": reason.loss_reason_id ?? "",
                text: `${reason.name ?? t("reason_unknown")}: ${formatCount(reason.count)}`,
            }));
            const line = t("worst_line", {
                name: worst.name,
                lost: formatCount(worst.lost),
                share: formatValue("ratio", worst.loss_share),
            });
            return el("li", { "data-stage-id": worst.stage_id }, [el("span", { text: line }), el("ul", {}, reasons)]);
        }));
    }

    // ========================================================================================== reviews

    function loadReviews() {
        load("reviews", async (isCurrent) => {
            const reviews = await apiList("/rejection-control/reviews?state=pending");
            if (!isCurrent()) return;
            state.reviews = reviews;
            state.reviewsLoaded = true;
            state.reviewUi = new Map();
            renderReviews();
            await loadReviewDeals(reviews);
            if (isCurrent()) renderReviews();
        });
    }

    /* Deal names and prices for the queue: nice to have, so a deal that cannot be read just shows its id. */
    async function loadReviewDeals(reviews) {
        const missing = [...new Set(reviews.map((r) => r.deal_id))].filter((id) => !state.deals.has(id));
        const replies = await Promise.allSettled(missing.map((id) => api(`/deals/${id}`)));
        replies.forEach((reply, i) => {
            if (reply.status === "fulfilled") state.deals.set(missing[i], reply.value);
        });
    }

    function reviewUi(id) {
        if (!state.reviewUi.has(id)) {
            state.reviewUi.set(id, { formOpen: false, note: "", managerId: null, error: "", busy: false });
        }
        return state.reviewUi.get(id);
    }

    function renderReviews() {
        const list = $("#review-list");
        $("#reviews-count").textContent = state.account ? `(${state.reviews.length})` : "";
        $("#reviews-readonly").hidden = !state.decisionsForbidden;
        if (state.reviews.length === 0) {
            list.replaceChildren(state.reviewsLoaded ? el("li", { className: "empty", text: t("reviews_none") }) : "");
            return;
        }
        const focused = document.activeElement?.id;
        list.replaceChildren(...state.reviews.map(reviewItem));
        if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
    }

    function reviewItem(review) {
        const ui = reviewUi(review.id);
        const deal = state.deals.get(review.deal_id);
        const dealLine = [t("review_deal", { id: review.deal_id })];
        if (deal) dealLine.push(`${deal.name} · ${formatCount(deal.price)}`);
        const reason = review.loss_reason_id === null
            ? t("reason_unknown")
            : state.lossReasons.get(review.loss_reason_id) ?? `#${review.loss_reason_id}`;
        const locked = ui.busy || state.decisionsForbidden;
        const meta = (field, text) => el("span", { className: "review-meta", "data-field": field, text });
        return el("li", { className: "review", "data-review-id": review.id, "data-deal-id": review.deal_id }, [
            el("div", { className: "review-head" }, [
                el("span", { className: "review-deal", text: dealLine.join(" — ") }),
                meta("lost_by", t("review_lost_by", { name: managerName(review.lost_by_manager_id) })),
                meta("loss_reason", t("review_reason", { name: reason })),
                meta("lost_at", t("review_lost_at", { time: formatDateTime(review.lost_at) })),
            ]),
            el("div", { className: "review-actions" }, [
                el("button", {
                    type: "button",
                    "data-action": "confirm",
                    disabled: locked,
                    text: t("confirm"),
                    onclick: () => confirmReview(review),
                }),
                el("button", {
                    type: "button",
                    "data-action": "return",
                    disabled: locked,
                    "aria-expanded": String(ui.formOpen),
                    "aria-controls": `return-form-${review.id}`,
                    text: t("return"),
                    onclick: () => toggleReturnForm(review),
                }),
            ]),
            ui.formOpen ? returnForm(review, ui, locked) : null,
            el("p", { className: "error", id: `review-error-${review.id}`, role: "alert", "data-field": "error",
                text: ui.error }),
        ]);
    }

    function returnableManagers(review) {
        const managers = state.managers.filter((m) => m.role === "manager" && m.active);
        if (!managers.some((m) => m.id === review.lost_by_manager_id) && review.lost_by_manager_id !== null) {
            const lostBy = state.managers.find((m) => m.id === review.lost_by_manager_id);
            managers.unshift(lostBy || { id: review.lost_by_manager_id, name: `#${review.lost_by_manager_id}` });
        }
        return managers;
    }

    function returnForm(review, ui, locked) {
        const noteId = `return-note-${review.id}`;
        const managerId = `return-manager-${review.id}`;
        const note = el("textarea", {
            id: noteId,
            name: "note",
            required: true,
            maxlength: 2000,
            disabled: locked,
            "aria-describedby": `review-error-${review.id}`,
            "aria-invalid": ui.error === t("note_required") ? "true" : null,
        });
        note.value = ui.note;
        note.addEventListener("input", () => { ui.note = note.value; });
        const chosen = ui.managerId ?? review.lost_by_manager_id;
        const options = returnableManagers(review)
            .map((m) => el("option", { value: m.id, selected: m.id === chosen, text: m.name }));
        const select = el("select", { id: managerId, name: "manager_id", disabled: locked }, options);
        select.addEventListener("change", () => { ui.managerId = Number(select.value); });
        const form = el("form", { className: "return-form", id: `return-form-${review.id}`, novalidate: true }, [
            el("label", { for: noteId }, [t("return_note"), note]),
            el("label", { for: managerId }, [t("return_manager"), select]),
            el("div", { className: "row" }, [
                el("button", { type: "submit", className: "button-primary", disabled: locked,
                    text: t("return_submit") }),
                el("button", { type: "button", text: t("cancel"), onclick: () => toggleReturnForm(review) }),
            ]),
        ]);
        form.addEventListener("submit", (event) => {
            event.preventDefault();
            returnReview(review, note.value, Number(select.value));
        });
        return form;
    }

    function toggleReturnForm(review) {
        const ui = reviewUi(review.id);
        ui.formOpen = !ui.formOpen;
        ui.error = "";
        renderReviews();
        if (ui.formOpen) $(`#return-note-${review.id}`)?.focus();
    }

    function confirmReview(review) {
        decide(review, { decision: "confirm" }, () => t("confirmed_msg", { id: review.deal_id }));
    }

    function returnReview(review, note, managerId) {
        const ui = reviewUi(review.id);
        if (!note.trim()) {
            ui.error = t("note_required");
            renderReviews();
            $(`#return-note-${review.id}`)?.focus();
            return;
        }
        const body = { decision: "return", note: note.trim(), manager_id: managerId };
        decide(review, body, () => t("returned_msg", { id: review.deal_id, name: managerName(managerId) }));
    }

    /* POSTs a decision; on success the review leaves the queue, on failure the problem's detail is shown
     * next to its buttons (a 403 means a read-only key: every decision button is then disabled). */
    async function decide(review, body, successMessage) {
        const ui = reviewUi(review.id);
        ui.busy = true;
        ui.error = "";
        renderReviews();
        try {
            await api(`/rejection-control/reviews/${review.id}/decision`, { method: "POST", body });
            state.reviews = state.reviews.filter((r) => r.id !== review.id);
            state.reviewUi.delete(review.id);
            setStatus("reviews", successMessage);
        } catch (error) {
            if (error.silent) return;
            if (error.status === 403) state.decisionsForbidden = true;
            ui.error = describeError(error);
        } finally {
            ui.busy = false;
            renderReviews();
        }
    }

    // ========================================================================================= managers

    function loadManagers() {
        load("managers", async (isCurrent) => {
            const distribution = await api("/distribution");
            const inReports = distribution.managers.filter((m) => m.role === "manager");
            const sessions = await Promise.all(inReports.map((m) => activeFocus(m.manager_id)));
            if (!isCurrent()) return;
            state.distribution = distribution;
            state.focus = new Map(inReports.map((m, i) => [m.manager_id, sessions[i]]));
            renderManagers();
        });
    }

    /* The manager's active focus session, or null when he is not in focus (404). */
    async function activeFocus(managerId) {
        try {
            return await api(`/managers/${managerId}/focus`);
        } catch (error) {
            if (error.status === 404) return null;
            throw error;
        }
    }

    function renderManagers() {
        const table = $("#managers-table");
        const distribution = state.distribution;
        if (!distribution) {
            table.replaceChildren();
            return;
        }
        const columns = [["col_manager", "text"], ["col_role", "text"], ["col_weight", null],
            ["col_distribution", "text"], ["col_focus", "text"]];
        const headings = columns.map(([label, className]) => el("th", { scope: "col", className, text: t(label) }));
        const head = el("thead", {}, el("tr", {}, headings));
        const rows = distribution.managers.length === 0
            ? [el("tr", {}, el("td", { colspan: 5, text: t("managers_none") }))]
            : distribution.managers.map(managerRow);
        table.replaceChildren(head, el("tbody", {}, rows));
    }

    function managerRow(manager) {
        const role = ["manager", "head", "admin"].includes(manager.role) ? t(`role_${manager.role}`) : manager.role;
        const reason = manager.eligible ? t("eligible") : reasonLabel(manager.reason);
        return el("tr", { "data-manager": manager.manager_id }, [
            el("th", { scope: "row", text: manager.name }),
            el("td", { className: "text", text: role }),
            el("td", { text: formatCount(manager.weight) }),
            el("td", {
                className: `text ${manager.eligible ? "state-yes" : "state-no"}`,
                "data-col": "distribution",
                "data-eligible": String(manager.eligible),
                "data-reason": manager.reason ?? "",
                text: reason,
            }),
            focusCell(manager),
        ]);
    }

    function reasonLabel(reason) {
        return reason && I18N.ru[`reason_${reason}`] ? t(`reason_${reason}`) : (reason ?? t("none"));
    }

    function focusCell(manager) {
        const attrs = { className: "text", "data-col": "focus" };
        if (!state.focus.has(manager.manager_id)) return el("td", { ...attrs, text: t("none") });
        const session = state.focus.get(manager.manager_id);
        if (!session) return el("td", { ...attrs, "data-state": "none", text: t("focus_none") });
        const progress = t("focus_progress", { done: session.done, total: session.total });
        const until = formatDateTime(session.ends_by);
        return el("td", { ...attrs, "data-state": "active", "data-done": session.done, "data-total": session.total }, [
            el("progress", { value: session.done, max: Math.max(session.total, 1), "aria-label": progress }),
            el("span", { "data-field": "progress", text: progress }),
            session.ends_by ? el("span", { className: "muted", text: ` · ${t("focus_until", { time: until })}` })
                : null,
        ]);
    }

    // ============================================================================================ start

    function bindEvents() {
        $("#sign-in-form").addEventListener("submit", onSignInSubmit);
        $("#sign-out").addEventListener("click", () => signOut());
        $("#lang-toggle").addEventListener("click", toggleLanguage);
        $("#checklist-form").addEventListener("submit", (event) => {
            event.preventDefault();
            loadChecklist();
        });
        $("#checklist-week").addEventListener("change", (event) => {
            state.weekIndex = Number(event.target.value);
            renderChecklist();
        });
        $("#funnel-form").addEventListener("submit", (event) => {
            event.preventDefault();
            loadFunnel();
        });
        $("#funnel-form").pipeline_id.addEventListener("change", loadFunnel);
        $("#reviews-reload").addEventListener("click", loadReviews);
        $("#managers-reload").addEventListener("click", loadManagers);
    }

    async function start() {
        state.lang = sessionStorage.getItem(STORAGE_LANG) === "en" ? "en" : "ru";
        bindEvents();
        applyLanguage();
        const key = sessionStorage.getItem(STORAGE_KEY);
        if (!key) {
            showSignIn();
            return;
        }
        let message = "";
        try {
            message = await signIn(key);
        } catch (error) {
            message = describeError(error);
        }
        if (message) signOut(message);
    }

    start();
})();
