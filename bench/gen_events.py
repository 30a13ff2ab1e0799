#!/usr/bin/env python3
"""Generates the import benchmark's events: NDJSON in the format of API.md "Events", on stdout.

    bench/gen_events.py [--events N] [--deals N] [--managers N] [--seed N] [--year YYYY] [--window SECONDS]

A year of one sales department (defaults: 1,000,000 events, 200,000 deals, 20 managers, seed 1, the year
2025): the managers first (manager.upserted), then every deal's life in one pipeline "sales" with the open
stages new, qualified, meeting, proposal, negotiation plus won and lost. The mix of the events after the
managers, by share of the rest:

    deal.created 20%   deal.stage_changed 30%   deal.responsible_changed 8%   deal.updated 7%
    task.created 12%   task.completed 8%        call.logged 10%               note.added 5%

Deals are created at times spread over the year; every other event of a deal comes after its creation (days
to weeks later, but within the year), a task's completion after the task. A deal's stage changes move it
forward through the open stages; its last one closes about half of the deals (40% of those won, 60% lost
with one of 5 loss reasons). 15% of the calls have no deal. The file is in time order, except that each
event is displaced by up to --window seconds (default 600): events arrive out of order within small windows,
as they do from a CRM. The same arguments always give the same file. A summary goes to stderr.
"""
import argparse
import datetime
import json
import random
import sys

OPEN_STAGES = ["new", "qualified", "meeting", "proposal", "negotiation"]
LOSS_REASONS = ["price", "competitor", "no_budget", "no_answer", "not_target"]
TASK_TYPES = ["call", "call", "meeting", "follow_up", "other"]
FIRST_NAMES = ["Анна", "Иван", "Мария", "Олег", "Елена", "Павел", "Ольга", "Дмитрий", "Наталья", "Сергей",
               "Ирина", "Алексей", "Татьяна", "Михаил", "Юлия", "Андрей", "Светлана", "Николай", "Ксения",
               "Артём"]
LAST_NAMES = ["Иванова", "Петров", "Смирнова", "Кузнецов", "Попова", "Соколов", "Лебедева", "Козлов",
              "Новикова", "Морозов"]
DEAL_NAMES = ["Заявка с сайта", "Входящий звонок", "Повторная продажа", "Тендер", "Рекомендация",
              "Выставка", "Холодный звонок", "Email-рассылка"]
TASK_TEXTS = ["Перезвонить клиенту", "Отправить КП", "Назначить встречу", "Уточнить бюджет",
              "Подготовить договор", ""]
NOTE_TEXTS = ["Клиент просит скидку 10%", "Обсудили сроки поставки", "ЛПР в отпуске до конца месяца",
              "Отправил презентацию", "Нужен счёт на предоплату", "Сравнивают с конкурентом"]

# shares of the events after the managers, in thousandths (sum 1000)
MIX = [("deal.created", 200), ("deal.stage_changed", 300), ("deal.responsible_changed", 80),
       ("deal.updated", 70), ("task.created", 120), ("task.completed", 80), ("call.logged", 100),
       ("note.added", 50)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--deals", type=int, default=None, help="default: a fifth of the events")
    ap.add_argument("--managers", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--year", type=int, default=2025)
    ap.add_argument("--window", type=int, default=600)
    args = ap.parse_args()
    rnd = random.Random(args.seed)

    rest = args.events - args.managers
    if rest < 10:
        sys.exit("gen_events: --events must be at least --managers + 10")
    counts = {t: rest * share // 1000 for t, share in MIX}
    counts["deal.created"] = args.deals if args.deals is not None else args.events // 5
    counts["deal.stage_changed"] += rest - sum(counts.values())  # rounding (or --deals) goes to stage changes
    if counts["deal.stage_changed"] < 0 or counts["deal.created"] < 1:
        sys.exit("gen_events: --deals does not fit into --events")
    n_deals = counts["deal.created"]
    if counts["task.completed"] > counts["task.created"]:
        sys.exit("gen_events: more task completions than tasks")

    start = datetime.datetime(args.year, 1, 1, tzinfo=datetime.timezone.utc).timestamp()
    end = datetime.datetime(args.year + 1, 1, 1, tzinfo=datetime.timezone.utc).timestamp() - 1
    year = end - start

    events = []  # (at, type, data)
    managers = [f"m{i:03d}" for i in range(1, args.managers + 1)]
    for i, m in enumerate(managers):
        data = {"manager": m, "name": f"{FIRST_NAMES[i % len(FIRST_NAMES)]} {LAST_NAMES[i % len(LAST_NAMES)]}",
                "role": "head" if i == 0 else "manager", "active": True}
        events.append((start + i, "manager.upserted", data))

    def after(t0, mean_days):
        """A time after t0, mean_days later on average, within the year."""
        t = t0 + 60 + rnd.expovariate(1.0 / (mean_days * 86400.0))
        return int(min(t, end))

    # deals: created over the year (the first hour is the managers'), each with a responsible
    created = [int(start + 3600 + rnd.random() * (year - 3600 - 86400)) for _ in range(n_deals)]
    deal_ids = [f"d{i:07d}" for i in range(1, n_deals + 1)]
    for d, t in zip(deal_ids, created):
        events.append((t, "deal.created", {"deal": d, "name": f"{rnd.choice(DEAL_NAMES)} №{d[1:]}",
                                           "price": rnd.randrange(10, 2000) * 1000, "pipeline": "sales",
                                           "stage": "new", "manager": rnd.choice(managers)}))

    def pick_deals(n):
        return [rnd.randrange(n_deals) for _ in range(n)]

    # stage changes: each deal's, in time order, move it forward; the last may close it
    per_deal = {}
    for k in pick_deals(counts["deal.stage_changed"]):
        per_deal[k] = per_deal.get(k, 0) + 1
    for k, n in per_deal.items():
        times = sorted(after(created[k], 14) for _ in range(n))
        cur = 0
        for j, t in enumerate(times):
            data = {"deal": deal_ids[k], "stage": None}
            if j == n - 1 and rnd.random() < 0.5:
                if rnd.random() < 0.4:
                    data["stage"] = "won"
                else:
                    data["stage"] = "lost"
                    data["loss_reason"] = rnd.choice(LOSS_REASONS)
            else:
                nxt = min(cur + 1, len(OPEN_STAGES) - 1)
                if nxt == cur:
                    nxt = rnd.randrange(1, len(OPEN_STAGES) - 1)
                cur = nxt
                data["stage"] = OPEN_STAGES[cur]
            if rnd.random() < 0.3:
                data["pipeline"] = "sales"
            events.append((t, "deal.stage_changed", data))

    for k in pick_deals(counts["deal.responsible_changed"]):
        events.append((after(created[k], 10), "deal.responsible_changed",
                       {"deal": deal_ids[k], "manager": rnd.choice(managers)}))

    for k in pick_deals(counts["deal.updated"]):
        data = {"deal": deal_ids[k]}
        r = rnd.random()
        if r < 0.7:
            data["price"] = rnd.randrange(10, 2000) * 1000
        if r > 0.5:
            data["name"] = f"{rnd.choice(DEAL_NAMES)} №{deal_ids[k][1:]} (уточн.)"
        events.append((after(created[k], 10), "deal.updated", data))

    # tasks on deals, some completed
    task_times = []
    for i, k in enumerate(pick_deals(counts["task.created"])):
        t = after(created[k], 7)
        task = f"t{i + 1:07d}"
        task_times.append((task, t))
        data = {"task": task, "deal": deal_ids[k], "type": rnd.choice(TASK_TYPES),
                "text": rnd.choice(TASK_TEXTS), "due_at": iso(min(t + rnd.randrange(3600, 7 * 86400), end))}
        if rnd.random() < 0.5:
            data["manager"] = rnd.choice(managers)
        events.append((t, "task.created", data))
    for task, t in rnd.sample(task_times, counts["task.completed"]):
        data = {"task": task}
        if rnd.random() < 0.6:
            data["result"] = rnd.choice(["Дозвонился", "Не берёт трубку", "КП отправлено", "Встреча назначена"])
        events.append((after(t, 3), "task.completed", data))

    for i in range(counts["call.logged"]):
        data = {"call": f"c{i + 1:07d}", "manager": rnd.choice(managers), "direction": rnd.choice(["in", "out"])}
        answered = rnd.random() < 0.7
        data["duration_s"] = rnd.randrange(15, 900) if answered else 0
        data["answered"] = answered
        if rnd.random() < 0.85:
            k = rnd.randrange(n_deals)
            data["deal"] = deal_ids[k]
            t = after(created[k], 10)
        else:
            t = int(start + 3600 + rnd.random() * (year - 3600))
        events.append((t, "call.logged", data))

    for i, k in enumerate(pick_deals(counts["note.added"])):
        data = {"note": f"n{i + 1:07d}", "deal": deal_ids[k], "text": rnd.choice(NOTE_TEXTS)}
        if rnd.random() < 0.8:
            data["manager"] = rnd.choice(managers)
        events.append((after(created[k], 10), "note.added", data))

    # arrival order: by time, each event displaced by up to --window seconds; ids in arrival order
    keyed = [(at + rnd.random() * args.window, at, typ, data) for at, typ, data in events]
    keyed.sort(key=lambda e: e[0])
    out = sys.stdout
    write = out.write
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    late = 0
    last_at = None
    for n, (_, at, typ, data) in enumerate(keyed, 1):
        if last_at is not None and at < last_at:
            late += 1
        last_at = at if last_at is None else max(last_at, at)
        write(dumps({"id": f"ev{n:08d}", "type": typ, "at": iso(at), "data": data}))
        write("\n")
    out.flush()

    by_type = {}
    for _, _, typ, _ in keyed:
        by_type[typ] = by_type.get(typ, 0) + 1
    print(f"gen_events: {len(keyed)} events, {n_deals} deals, {len(managers)} managers, "
          f"{late} events earlier than one before them (window {args.window} s)", file=sys.stderr)
    for typ, n in sorted(by_type.items(), key=lambda x: -x[1]):
        print(f"gen_events:   {typ:26} {n:8d} ({100.0 * n / len(keyed):4.1f}%)", file=sys.stderr)


def iso(t):
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


if __name__ == "__main__":
    main()
