#!/usr/bin/env python3
"""Load generator and checker for the chaos scripts (tests/chaos/*.sh). Standard library only.

Subcommands:

  load     sustained load of amoCRM webhook bodies and POST /events batches on keep-alive connections, for a
           number of seconds; every request's outcome (HTTP status, "timeout" or "conn_error"), its times and
           its unique external ids go to a JSON-lines file, one line per request.
  resend   sends again, with the same bodies, every request of the given result files that was never answered
           2xx (as amoCRM redelivers and as an event sender retries), until each is answered 2xx or time is up.
  pgwatch  polls pg_isready every --interval s (50 ms) and writes each change (up/down) with its time to a file.
  verify   waits until the inbox has nothing pending, then compares "acknowledged" (the result files) with
           "applied" (the database, through psql): every acknowledged request applied exactly once, nothing
           applied twice, nothing applied that was never sent, unacknowledged requests all or nothing;
           with --claimed FILE, the webhook bodies acknowledged and not applied at a kill (listed in FILE) are
           all applied afterwards, and not by the killed process's transaction.
  outages  per outage window: 503s, other answers, timeouts, the first 2xx after the end of the window (the
           recovery time) and the last non-2xx after it.

Every request has unique external ids derived from its number n, so that its body can be rebuilt for a resend
and its effect found in SQL:
  webhook n: one body with leads[add] (lead 70000000+n, price 1000) and leads[update] of the same lead one
             second later (price 2000+n). Applied once: one inbox body row, applied, with 2 child events
             applied; one deal with external_id = the lead, price 2000+n, 2 deal_changes rows (1 creation).
  events n:  DEALS deals "ev-n-j", each a deal.created (id "ev-n-j-c") and a deal.stage_changed one second
             later (id "ev-n-j-s"). Applied once: both event ids in the inbox once, applied; one deal with
             2 deal_changes rows (1 creation) and 2 deal_history rows.

Check lines are printed as "ok   NAME" or "FAIL NAME: ..." (the format of tests/e2e), the last line of verify
and outages is "CHECKS passed=N failed=M"; figures go to a JSON file when --figures is given.
"""
import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

LEAD_BASE = 70000000
PIPELINE = "6101001"  # the pipeline, stages and manager of the shared amoCRM samples (placeholders here)
STAGE_NEW, STAGE_NEXT = "55012001", "55012002"
MANAGER = "8800001"
WEBHOOK_CHANGES = 2  # deal_changes rows of one webhook lead: the creation and the price update
EVENT_CHANGES = 2  # deal_changes (and deal_history) rows of one events deal: creation and stage change


# ------------------------------------------------------------------------------------------------- bodies
def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def webhook_body(n, born):
    lead = LEAD_BASE + n
    fields = []
    for action, price, at in (("add", 1000, born), ("update", 2000 + n, born + 1)):
        p = f"leads[{action}][0]"
        fields += [(f"{p}[id]", lead), (f"{p}[name]", f"Chaos lead {n}"), (f"{p}[status_id]", STAGE_NEW),
                   (f"{p}[price]", price), (f"{p}[responsible_user_id]", MANAGER),
                   (f"{p}[pipeline_id]", PIPELINE), (f"{p}[created_at]", born), (f"{p}[updated_at]", at)]
    fields += [("account[subdomain]", "chaos"), ("account[id]", "29085511")]
    return urllib.parse.urlencode(fields)


def event_deals(n, deals):
    return [f"ev-{n}-{j}" for j in range(deals)]


def events_body(n, born, deals):
    evs = []
    for d in event_deals(n, deals):
        evs.append({"id": d + "-c", "type": "deal.created", "at": iso(born),
                    "data": {"deal": d, "name": "Chaos " + d, "price": 100, "pipeline": PIPELINE,
                             "stage": STAGE_NEW, "manager": MANAGER}})
        evs.append({"id": d + "-s", "type": "deal.stage_changed", "at": iso(born + 1),
                    "data": {"deal": d, "stage": STAGE_NEXT}})
    return json.dumps(evs)


# ------------------------------------------------------------------------------------------------- client
class Client:
    """One keep-alive connection to one of the targets; reconnects after any failure."""

    def __init__(self, targets, home, timeout, failover):
        self.targets, self.target, self.timeout, self.failover = targets, home, timeout, failover
        self.conn = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def send(self, method, path, body, headers):
        """Returns (target, outcome, reply bytes or error text); outcome is the status or an error word."""
        target = self.target
        try:
            if self.conn is None:
                host, port = self.targets[target].rsplit(":", 1)
                self.conn = http.client.HTTPConnection(host, int(port), timeout=self.timeout)
            self.conn.request(method, path, body, headers)
            r = self.conn.getresponse()
            data = r.read()
            if r.will_close:
                self.close()
            return target, r.status, data
        except (socket.timeout, TimeoutError) as e:
            self.close()
            return target, "timeout", repr(e)
        except (OSError, http.client.HTTPException) as e:
            # refused, reset, closed without an answer: nobody answered this request
            self.close()
            if self.failover and len(self.targets) > 1:
                self.target = (self.target + 1) % len(self.targets)
            return target, "conn_error", repr(e)


def send_request(client, args, kind, n, born):
    if kind == "webhook":
        path = "/api/v1/webhooks/amocrm/" + args.token
        body = webhook_body(n, born)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    else:
        path = "/api/v1/events"
        body = events_body(n, born, args.deals)
        headers = {"Content-Type": "application/json", "Authorization": "Bearer " + args.key}
    t0 = time.time()
    target, outcome, data = client.send("POST", path, body, headers)
    t1 = time.time()
    rec = {"n": n, "kind": kind, "born": born, "target": target, "t0": round(t0, 4), "t1": round(t1, 4),
           "outcome": outcome}
    if kind == "events":
        rec["deals"] = args.deals
    if isinstance(outcome, int):
        try:
            reply = json.loads(data)
        except ValueError:
            reply = None
        if 200 <= outcome < 300 and isinstance(reply, dict):
            rec["reply"] = {k: reply[k] for k in ("status", "inbox_id", "accepted", "duplicates") if k in reply}
            if reply.get("rejected"):
                rec["rejected"] = reply["rejected"][:3]
        elif not 200 <= outcome < 300:
            rec["detail"] = (reply.get("code") if isinstance(reply, dict) else None) or data[:120].decode(
                "utf-8", "replace")
    else:
        rec["detail"] = data[:160]
    return rec


def is_2xx(rec):
    return isinstance(rec["outcome"], int) and 200 <= rec["outcome"] < 300


# ------------------------------------------------------------------------------------------------- load
def cmd_load(args):
    targets = args.targets.split(",")
    lock = threading.Lock()
    counter = [args.first]
    out = open(args.out, "a", buffering=1)
    stop_at = [None]

    def next_n():
        with lock:
            counter[0] += 1
            return counter[0] - 1

    def write(rec):
        with lock:
            out.write(json.dumps(rec, separators=(",", ":")) + "\n")

    # warm-up: one request of each kind, one after the other, so that the placeholders (pipeline, stages,
    # manager) exist before the concurrent load; they are requests like the others
    warm = Client(targets, 0, args.timeout, True)
    for kind in ("webhook", "events"):
        for _ in range(50):
            rec = send_request(warm, args, kind, next_n(), int(time.time()))
            write(rec)
            if is_2xx(rec):
                break
            time.sleep(0.2)
        else:
            sys.exit(f"warm-up {kind} request never answered 2xx: {rec}")
    warm.close()

    def worker(idx, kind, clients, rate):
        client = Client(targets, idx % len(targets), args.timeout, args.failover)
        interval = clients / rate if rate > 0 else 0  # each client's share of the kind's rate
        due = time.time() + interval * idx / max(clients, 1)
        while True:
            now = time.time()
            if due > now:
                time.sleep(due - now)
            if time.time() >= stop_at[0]:
                break
            rec = send_request(client, args, kind, next_n(), int(time.time()))
            write(rec)
            if not is_2xx(rec):
                time.sleep(args.pause_after_error)  # no busy loop against a closed port
            # paced: the next request at its due time, no catching up after a slow answer
            due = max(due + interval, time.time()) if interval else time.time()
        client.close()

    stop_at[0] = time.time() + args.duration
    if args.started:
        with open(args.started, "w") as f:
            f.write(f"{time.time():.4f}\n")
    threads = [threading.Thread(target=worker, args=(i, "webhook", args.webhook_clients, args.webhook_rate))
               for i in range(args.webhook_clients)]
    threads += [threading.Thread(target=worker, args=(i, "events", args.events_clients, args.events_rate))
                for i in range(args.events_clients)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.close()
    elapsed = time.time() - t0
    sent = counter[0] - args.first
    print(f"load: {sent} requests ({args.webhook_clients} webhook clients at {args.webhook_rate or 'unpaced'}/s,"
          f" {args.events_clients} events clients at {args.events_rate or 'unpaced'}/s) in {elapsed:.1f} s,"
          f" {sent / max(elapsed, 1e-9):.0f}/s", file=sys.stderr)


# ------------------------------------------------------------------------------------------------- resend
def read_results(paths):
    recs = []
    for p in paths:
        if not os.path.exists(p):
            continue
        with open(p) as f:
            for line in f:
                line = line.strip()
                if line:
                    recs.append(json.loads(line))
    return recs


def cmd_resend(args):
    targets = args.targets.split(",")
    recs = read_results(args.inputs)
    acked = {(r["kind"], r["n"]) for r in recs if is_2xx(r)}
    todo, seen = [], set()
    for r in recs:
        key = (r["kind"], r["n"])
        if key not in acked and key not in seen:
            seen.add(key)
            todo.append(r)
    args.deals = args.deals or 0
    deadline = time.time() + args.max_seconds
    out = open(args.out, "a", buffering=1)
    client = Client(targets, 0, args.timeout, True)
    done = 0
    for r in todo:
        args.deals = r.get("deals", args.deals)
        while True:
            rec = send_request(client, args, r["kind"], r["n"], r["born"])
            rec["resend"] = True
            out.write(json.dumps(rec, separators=(",", ":")) + "\n")
            if is_2xx(rec):
                done += 1
                break
            if time.time() > deadline:
                break
            time.sleep(0.2)
    client.close()
    out.close()
    print(f"resend: {done} of {len(todo)} unacknowledged requests answered 2xx on resend", file=sys.stderr)


# ------------------------------------------------------------------------------------------------- pgwatch
def cmd_pgwatch(args):
    state = None
    with open(args.out, "a", buffering=1) as out:
        while not os.path.exists(args.stop_file):
            ok = subprocess.run([args.pg_isready, "-q", "-t", "1", "-h", args.host, "-p", args.port,
                                 "-U", "postgres", "-d", "postgres"]).returncode == 0
            now = time.time()
            s = "up" if ok else "down"
            if s != state:
                out.write(f"{now:.4f} {s}\n")
                state = s
            time.sleep(args.interval)


# ------------------------------------------------------------------------------------------------- checks
class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"ok   {name}")
        else:
            self.failed += 1
            print(f"FAIL {name}" + (f": {detail}" if detail else ""))

    def done(self):
        print(f"CHECKS passed={self.passed} failed={self.failed}")
        return 0


def psql_rows(args, sql):
    out = subprocess.run([args.psql, "-X", "-q", "-tA", "-F", "\t", "-v", "ON_ERROR_STOP=1", args.db, "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def outcome_counts(recs):
    c = {"sent": len(recs), "2xx": 0, "503": 0, "timeout": 0, "conn_error": 0, "other": 0}
    for r in recs:
        o = r["outcome"]
        if is_2xx(r):
            c["2xx"] += 1
        elif o == 503:
            c["503"] += 1
        elif o in ("timeout", "conn_error"):
            c[o] += 1
        else:
            c["other"] += 1
    return c


def cmd_verify(args):
    ck = Checks()
    acct = int(args.account)
    recs = read_results(args.inputs)
    main = [r for r in recs if not r.get("resend")]

    # wait until everything received has been applied (the API's own rule: nothing pending or waiting)
    t0 = time.time()
    pending = None
    while time.time() - t0 < args.drain_seconds:
        pending = int(psql_rows(args, f"SELECT count(*) FROM inbox WHERE account_id = {acct}"
                                      " AND state IN ('pending', 'waiting')")[0][0])
        if pending == 0:
            break
        time.sleep(0.5)
    drain_s = time.time() - t0
    ck.check(f"inbox drained: nothing pending or waiting (after {drain_s:.1f} s)", pending == 0,
             f"{pending} rows still pending or waiting after {args.drain_seconds} s")
    failed_rows = psql_rows(args, f"SELECT id, source, coalesce(error, '') FROM inbox WHERE account_id = {acct}"
                                  " AND state = 'failed' ORDER BY id LIMIT 5")
    nfailed = int(psql_rows(args, f"SELECT count(*) FROM inbox WHERE account_id = {acct}"
                                  " AND state = 'failed'")[0][0])
    ck.check("no inbox row failed", nfailed == 0, f"{nfailed} failed, e.g. {failed_rows}")

    # the database side
    bodies = {}  # lead -> list of (inbox id, state, children, applied children, applied_at)
    for row in psql_rows(args, f"""
            SELECT i.id, i.state,
                   coalesce(substring(i.body from 'leads%5Badd%5D%5B0%5D%5Bid%5D=([0-9]+)'), ''),
                   (SELECT count(*) FROM inbox c WHERE c.account_id = i.account_id AND c.parent_id = i.id),
                   (SELECT count(*) FROM inbox c WHERE c.account_id = i.account_id AND c.parent_id = i.id
                      AND c.state = 'applied'),
                   coalesce(extract(epoch FROM i.applied_at)::text, '')
            FROM inbox i WHERE i.account_id = {acct} AND i.source = 'amocrm'"""):
        bodies.setdefault(row[2], []).append((int(row[0]), row[1], int(row[3]), int(row[4]), row[5]))
    events = {}  # event id -> list of states
    for eid, state in psql_rows(args, f"SELECT event_id, state FROM inbox WHERE account_id = {acct}"
                                      " AND source = 'events'"):
        events.setdefault(eid, []).append(state)
    deals = {}  # external id -> (price, changes, creations, history rows, stage external id)
    for row in psql_rows(args, f"""
            SELECT d.external_id, d.price,
                   (SELECT count(*) FROM deal_changes c WHERE c.account_id = d.account_id AND c.deal_id = d.id),
                   (SELECT count(*) FROM deal_changes c WHERE c.account_id = d.account_id AND c.deal_id = d.id
                      AND c.creation),
                   (SELECT count(*) FROM deal_history h WHERE h.account_id = d.account_id AND h.deal_id = d.id),
                   coalesce(s.external_id, '')
            FROM deals d LEFT JOIN stages s ON s.account_id = d.account_id AND s.id = d.stage_id
            WHERE d.account_id = {acct}"""):
        deals[row[0]] = (int(row[1]), int(row[2]), int(row[3]), int(row[4]), row[5])

    # the client side: one entry per request (kind, n), acknowledged when any attempt was answered 2xx
    reqs = {}
    for r in recs:
        e = reqs.setdefault((r["kind"], r["n"]), {"acked": False, "replies": [], "deals": r.get("deals", 0)})
        if is_2xx(r):
            e["acked"] = True
            e["replies"].append(r.get("reply", {}))

    lost, dup, wrong, partial, unacked_applied, applied_ok = [], [], [], [], 0, 0
    acked_events = 0
    for (kind, n), e in sorted(reqs.items()):
        if kind == "webhook":
            lead = str(LEAD_BASE + n)
            rows = bodies.get(lead, [])
            d = deals.get(lead)
            if len(rows) > 1 or (d and (d[1] > WEBHOOK_CHANGES or d[2] > 1)):
                dup.append(f"webhook {n}: {len(rows)} body rows, deal {d}")
                continue
            present = len(rows) == 1 or d is not None
            complete = (len(rows) == 1 and rows[0][1] == "applied" and rows[0][2] == 2 and rows[0][3] == 2
                        and d is not None and d[0] == 2000 + n and d[1] == WEBHOOK_CHANGES and d[2] == 1)
            if e["acked"]:
                if not present:
                    lost.append(f"webhook {n} (lead {lead})")
                elif not complete:
                    wrong.append(f"webhook {n}: body rows {rows}, deal {d}")
                else:
                    applied_ok += 1
                    ids = {x.get("inbox_id") for x in e["replies"] if x.get("status") == "accepted"}
                    if ids and ids != {rows[0][0]}:
                        wrong.append(f"webhook {n}: acknowledged as inbox {ids}, stored as {rows[0][0]}")
            elif present:
                if complete:
                    unacked_applied += 1
                else:
                    partial.append(f"webhook {n} (not acknowledged): body rows {rows}, deal {d}")
        else:
            ndeals = e["deals"]
            found, good = 0, 0
            problems = []
            for did in event_deals(n, ndeals):
                c, s, d = events.get(did + "-c", []), events.get(did + "-s", []), deals.get(did)
                if len(c) > 1 or len(s) > 1 or (d and (d[1] > EVENT_CHANGES or d[2] > 1 or d[3] > EVENT_CHANGES)):
                    dup.append(f"events {n} deal {did}: inbox {c} {s}, deal {d}")
                    continue
                if c or s or d:
                    found += 1
                if (c == ["applied"] and s == ["applied"] and d is not None and d[1] == EVENT_CHANGES
                        and d[2] == 1 and d[3] == EVENT_CHANGES and d[4] == STAGE_NEXT):
                    good += 1
                elif c or s or d:
                    problems.append(f"deal {did}: inbox {c} {s}, deal {d}")
            if e["acked"]:
                acked_events += 2 * ndeals
                if found == 0:
                    lost.append(f"events {n} ({ndeals} deals)")
                elif good != ndeals:
                    wrong.append(f"events {n}: {good} of {ndeals} deals applied as expected; {problems[:2]}")
                else:
                    applied_ok += 1
                    for x in e["replies"]:
                        if x.get("accepted", 0) + x.get("duplicates", 0) != 2 * ndeals:
                            wrong.append(f"events {n}: reply {x} does not account for {2 * ndeals} events")
            elif found:
                if good == ndeals:
                    unacked_applied += 1
                else:
                    partial.append(f"events {n} (not acknowledged): {good} of {ndeals} deals; {problems[:2]}")

    # nothing applied that was never sent
    sent_leads = {str(LEAD_BASE + n) for (k, n) in reqs if k == "webhook"}
    sent_deals = {d for (k, n), e in reqs.items() if k == "events" for d in event_deals(n, e["deals"])}
    phantom = [x for x in deals if x not in sent_leads and x not in sent_deals]
    phantom += [f"body of lead {x}" for x in bodies if x not in sent_leads]
    phantom += [f"event {x}" for x in events if x[:-2] not in sent_deals]

    acked = sum(1 for e in reqs.values() if e["acked"])
    label = args.label
    ck.check(f"{label}: every acknowledged request applied ({applied_ok} of {acked})",
             not lost and not wrong and applied_ok == acked,
             f"{len(lost)} lost, e.g. {lost[:3]}; {len(wrong)} applied wrongly, e.g. {wrong[:3]}")
    ck.check(f"{label}: nothing applied twice", not dup, f"{len(dup)}, e.g. {dup[:3]}")
    ck.check(f"{label}: unacknowledged requests applied all or nothing ({unacked_applied} applied whole)",
             not partial, f"{len(partial)}, e.g. {partial[:3]}")
    ck.check(f"{label}: nothing applied that was never sent", not phantom, f"{len(phantom)}, e.g. {phantom[:3]}")
    if args.require_all:
        unacked = [k for k, e in reqs.items() if not e["acked"]]
        ck.check(f"{label}: every request sent was answered 2xx in the end", not unacked,
                 f"{len(unacked)} never, e.g. {unacked[:3]}")

    by_id = {b[0]: b for rows in bodies.values() for b in rows}
    claimed_figures = []
    for path in args.claimed:
        # webhook bodies acknowledged and not applied at a kill: all must be applied afterwards. The file:
        # a label; the kill time; "after-kill" (each applied by a transaction that started after the kill:
        # applied_at, which is the applying transaction's start, is later) or "other-transaction" (lines
        # "id xid": the dead instance's transaction xid held the row; the applied version must have been
        # written by another transaction); then one inbox id a line, with the xid in the second mode.
        with open(path) as f:
            label = f.readline().strip()
            t_kill = float(f.readline())
            mode = f.readline().strip()
            rows = [line.split() for line in f if line.strip()]
        ids = [int(r[0]) for r in rows]
        done = [i for i in ids if i in by_id and by_id[i][1] == "applied"]
        ck.check(f"{label}: {len(ids)} webhook bodies (at least 1)", len(ids) >= 1,
                 "none: the kill did not catch any body acknowledged and not yet applied")
        ck.check(f"{label}: all applied afterwards ({len(done)} of {len(ids)})", len(done) == len(ids),
                 f"not applied: {[i for i in ids if i not in done][:5]}")
        if mode == "after-kill":
            early = [i for i in done if not by_id[i][4] or float(by_id[i][4]) <= t_kill]
            ck.check(f"{label}: each applied by a transaction that began after the kill", not early,
                     f"{len(early)} applied by a transaction that began before, e.g. {early[:5]}")
        elif ids:
            xmins = dict((int(a), b) for a, b in psql_rows(
                args, f"SELECT id, xmin::text FROM inbox WHERE account_id = {acct}"
                      f" AND id IN ({','.join(map(str, ids))})"))
            same = [i for i, xid in ((int(r[0]), r[1]) for r in rows) if xmins.get(i) == xid]
            ck.check(f"{label}: each applied by another transaction than the dead instance's", not same,
                     f"{len(same)} rows written by the dead transaction, e.g. {same[:5]}")
        claimed_figures.append({"label": label, "bodies": len(ids), "applied": len(done)})

    figures = outcome_counts(main)
    figures.update({
        "by_kind": {k: outcome_counts([r for r in main if r["kind"] == k]) for k in ("webhook", "events")},
        "events_sent": sum(2 * r.get("deals", 0) for r in main if r["kind"] == "events"),
        "requests": len(reqs), "acknowledged": acked, "acknowledged_events": acked_events,
        "applied": applied_ok, "duplicates": len(dup), "lost": len(lost) + len(wrong),
        "unacknowledged_applied": unacked_applied, "partial": len(partial), "phantom": len(phantom),
        "drain_s": round(drain_s, 2), "max_latency_s": round(max((r["t1"] - r["t0"] for r in main), default=0), 3),
        "resends": len(recs) - len(main), "claimed": claimed_figures,
    })
    if args.figures:
        with open(args.figures, "w") as f:
            json.dump(figures, f, indent=1)
    return ck.done()


def cmd_outages(args):
    """Outage windows from a file of lines "label start_event_time"; the down/up times from pgwatch (or, with
    --windows-have-end, "label start end" lines: a service that was killed and started again)."""
    ck = Checks()
    recs = [r for r in read_results(args.inputs) if not r.get("resend")]
    watch = []
    if args.watch:
        with open(args.watch) as f:
            watch = [(float(a), b) for a, b in (line.split() for line in f if line.strip())]
    windows = []
    with open(args.windows) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            label, start = parts[0], float(parts[1])
            if len(parts) > 2:
                down, up = start, float(parts[2])
            else:  # from pgwatch: the first "down" at or after the command, then the next "up"
                down = next((t for t, s in watch if s == "down" and t >= start - 0.05), None)
                up = next((t for t, s in watch if s == "up" and down is not None and t > down), None)
            windows.append((label, start, down, up))
    allowed = set(args.allow)
    bad = [r for r in recs if not is_2xx(r) and str(r["outcome"]) not in allowed]
    ck.check(f"every answer of the load is 2xx or {' or '.join(sorted(allowed))} ({len(recs)} requests)", not bad,
             f"{len(bad)} others, e.g. {[(r['kind'], r['n'], r['outcome'], r.get('detail')) for r in bad[:4]]}")
    timeouts = [r for r in recs if r["outcome"] == "timeout"]
    slowest = max((r["t1"] - r["t0"] for r in recs), default=0)
    ck.check(f"no request waited for its answer past the client timeout of {args.timeout:g} s "
             f"(slowest {slowest:.3f} s)", not timeouts and slowest < args.timeout,
             f"{len(timeouts)} timed out")
    results = []
    for idx, (label, start, down, up) in enumerate(windows):
        until = windows[idx + 1][1] if idx + 1 < len(windows) else float("inf")  # the next outage's command
        if down is None or up is None:
            ck.check(f"{label}: outage seen (down and up again)", False, f"down {down}, up {up}")
            continue
        during = [r for r in recs if r["t0"] >= start and r["t1"] <= up]
        n503 = sum(1 for r in during if r["outcome"] == 503)
        non503 = [r for r in during if not is_2xx(r) and r["outcome"] != 503]
        after = sorted((r for r in recs if up < r["t1"] < until), key=lambda r: r["t1"])
        first_ok = next((r for r in after if is_2xx(r)), None)
        rec_s = first_ok["t1"] - up if first_ok else None
        first_ok_kind = {}
        for k in ("webhook", "events"):
            fk = next((r for r in after if is_2xx(r) and r["kind"] == k), None)
            first_ok_kind[k] = round(fk["t1"] - up, 3) if fk else None
        late = [r for r in after if not is_2xx(r)]
        last_bad = (late[-1]["t1"] - up) if late else None
        info = {"label": label, "command_at": start, "down_at": down, "up_at": up,
                "outage_s": round(up - down, 3), "requests_in_outage": len(during), "503_in_outage": n503,
                "other_in_outage": len(non503),
                "conn_error_in_outage": sum(1 for r in during if r["outcome"] == "conn_error"), "recovery_s": round(rec_s, 3) if rec_s is not None else None,
                "first_2xx_by_kind_s": first_ok_kind, "non_2xx_after_up": len(late),
                "last_non_2xx_after_up_s": round(last_bad, 3) if last_bad is not None else None}
        results.append(info)
        print(f"     {label}: down {down - start:.2f} s after the command for {up - down:.2f} s;"
              f" {len(during)} requests in the outage ({n503} answered 503, {len(non503)} otherwise);"
              f" first 2xx {rec_s if rec_s is None else round(rec_s, 3)} s after it was back"
              f" (webhook {first_ok_kind['webhook']}, events {first_ok_kind['events']});"
              f" {len(late)} non-2xx after it was back"
              + (f", the last {last_bad:.3f} s after" if last_bad is not None else ""))
        if args.expect_503:
            ck.check(f"{label}: requests in the outage answered 503 ({n503})", n503 >= 1 and not non503,
                     f"{n503} answered 503, others: "
                     f"{[(r['outcome'], r.get('detail')) for r in non503[:3]]}")
        ck.check(f"{label}: recovery (back to the first 2xx) under {args.max_recovery} s "
                 f"({'none' if rec_s is None else f'{rec_s:.3f} s'})",
                 rec_s is not None and rec_s < args.max_recovery)
        ck.check(f"{label}: every answer {args.max_recovery} s after it was back is 2xx",
                 last_bad is None or last_bad < args.max_recovery,
                 f"last non-2xx {last_bad} s after: {late[-1]['outcome']} {late[-1].get('detail')}"
                 if late else "")
    if args.figures:
        with open(args.figures, "w") as f:
            json.dump(results, f, indent=1)
    return ck.done()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common_http(p):
        p.add_argument("--targets", required=True, help="host:port[,host:port]")
        p.add_argument("--key", required=True)
        p.add_argument("--token", required=True)
        p.add_argument("--timeout", type=float, default=5.0)
        p.add_argument("--deals", type=int, default=10, help="deals per /events request (2 events each)")

    p = sub.add_parser("load")
    common_http(p)
    p.add_argument("--out", required=True)
    p.add_argument("--duration", type=float, default=45)
    p.add_argument("--webhook-clients", type=int, default=4)
    p.add_argument("--events-clients", type=int, default=4)
    p.add_argument("--webhook-rate", type=float, default=0, help="webhook bodies a second, all clients (0: unpaced)")
    p.add_argument("--events-rate", type=float, default=0, help="/events requests a second, all clients (0: unpaced)")
    p.add_argument("--failover", action="store_true", help="after a connection error use the next target")
    p.add_argument("--pause-after-error", type=float, default=0.05)
    p.add_argument("--first", type=int, default=1, help="number of the first request")
    p.add_argument("--started", help="file to write the start time of the timed load to")

    p = sub.add_parser("resend")
    common_http(p)
    p.add_argument("--out", required=True)
    p.add_argument("--max-seconds", type=float, default=120)
    p.add_argument("inputs", nargs="+")

    p = sub.add_parser("pgwatch")
    p.add_argument("--pg-isready", required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--port", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--stop-file", required=True)
    p.add_argument("--interval", type=float, default=0.05)

    p = sub.add_parser("verify")
    p.add_argument("--psql", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--account", required=True)
    p.add_argument("--label", default="load")
    p.add_argument("--drain-seconds", type=float, default=180)
    p.add_argument("--require-all", action="store_true")
    p.add_argument("--claimed", action="append", default=[],
                   help="file: label, kill time, mode (after-kill or other-transaction), then one inbox id a line"
                        " (with the dead transaction's xid in the second mode) that must be applied (repeatable)")
    p.add_argument("--figures")
    p.add_argument("inputs", nargs="+")

    p = sub.add_parser("outages")
    p.add_argument("--windows", required=True)
    p.add_argument("--watch")
    p.add_argument("--max-recovery", type=float, default=5.0)
    p.add_argument("--expect-503", action="store_true")
    p.add_argument("--allow", action="append", default=[], help="outcomes besides 2xx that may occur: 503 conn_error")
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--figures")
    p.add_argument("inputs", nargs="+")

    args = ap.parse_args()
    return {"load": cmd_load, "resend": cmd_resend, "pgwatch": cmd_pgwatch, "verify": cmd_verify,
            "outages": cmd_outages}[args.cmd](args) or 0


if __name__ == "__main__":
    sys.exit(main())
