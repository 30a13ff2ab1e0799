#!/usr/bin/env bash
# Validates the deployment files: docker/compose.yaml, docker/nginx.conf, docker/Dockerfile, the systemd
# units, docker/salesops.env.example and docs/DEPLOY.md. Docker itself is not needed (nor used): what can be
# checked without a daemon is checked, then the real nginx config is run in front of two real instances.
#
#   scripts/check_deploy.sh [BINARY]          BINARY defaults to build/salesops (SALESOPS_BIN also works)
#
# Checks, each skipped (and said so) when its tool is missing:
#   compose    YAML parses; db / salesops-1 / salesops-2 / proxy as DEPLOY.md describes them; health checks on
#              /readyz; stop grace longer than the shutdown grace; only marked dev passwords; every variable a
#              real setting (python3 + PyYAML)
#   compose-v1 `docker-compose config` (Debian's v1; the top-level `name:` is stripped, v1 predates it)
#   compose-v2 `docker compose config` when the compose plugin is installed
#   settings   every setting of `salesops --help` is in docker/salesops.env.example and in DEPLOY.md's table
#              with the same flag and default
#   image      the runtime stage of docker/Dockerfile installs the package of every library the binary links
#              (readelf + dpkg), and curl for its health check
#   nginx      `nginx -t` on docker/nginx.conf (upstream host names and `resolve` adapted in a copy) and on
#              DEPLOY.md's TLS example (with a throwaway self-signed certificate)
#   systemd    `systemd-analyze verify` on salesops.service and on an instance of salesops@.service (the
#              binary path pointed at BINARY in a copy), plus the settings the units must have
#   smoke      a private PostgreSQL, two `salesops serve` with the compose settings, and nginx with
#              docker/nginx.conf in front: the page, the API, X-Request-Id, /metrics kept internal, 16 MiB
#              bodies, webhook tokens kept out of the access log, both instances used, failover when one
#              stops, the compose health check command, the metric names DEPLOY.md lists, and a backup and
#              restore drill (pg_dump -Fc, pg_restore, a new instance on the copy)
#
# Prints one line per check and "N passed, M failed" (", K skipped" when some were skipped); exits 1 when a
# check failed. KEEP_TMP=1 keeps the temporary directory.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

BIN=${1:-${SALESOPS_BIN:-$ROOT/build/salesops}}
case $BIN in /*) ;; *) BIN="$PWD/$BIN" ;; esac
COMPOSE=$ROOT/docker/compose.yaml
NGINX_CONF=$ROOT/docker/nginx.conf
DOCKERFILE=$ROOT/docker/Dockerfile
UNIT=$ROOT/docker/salesops.service
UNIT_TEMPLATE=$ROOT/docker/salesops@.service
ENV_EXAMPLE=$ROOT/docker/salesops.env.example
DEPLOY=$ROOT/docs/DEPLOY.md

passed=0
failed=0
skipped=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1${2:+: $2}"; }
skip() { skipped=$((skipped + 1)); echo "skip $1${2:+: $2}"; }
check() { # name, expected, actual
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "expected $2, got $3"; fi
}
have() { command -v "$1" >/dev/null 2>&1; }
# A python3 check: the script prints "ok NAME" / "FAIL NAME: why" lines, which are counted here.
pycheck() {
    local line
    while IFS= read -r line; do
        case $line in
            "ok "*) ok "${line#ok }" ;;
            "FAIL "*) bad "${line#FAIL }" ;;
            *) echo "     $line" ;;
        esac
    done < <(python3 - "$@" 2>&1 || echo "FAIL python check crashed")
}

TMP=$(mktemp -d /tmp/check_deploy.XXXXXX)
[ "$(id -u)" -ne 0 ] || chown postgres:postgres "$TMP" 2>/dev/null || true
chmod 755 "$TMP"
SERVE_PIDS=()
NGINX_PID=""
cleanup() {
    local pid
    if [ -n "$NGINX_PID" ]; then kill -QUIT "$NGINX_PID" 2>/dev/null || true; fi
    for pid in "${SERVE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${SERVE_PIDS[@]}"; do stop_pid "$pid" salesops; done
    if [ -n "$NGINX_PID" ]; then stop_pid "$NGINX_PID" nginx; fi
    pg_stop >/dev/null 2>&1 || true
    if [ -n "${KEEP_TMP:-}" ]; then echo "kept $TMP"; else rm -rf -- "$TMP"; fi
}
trap cleanup EXIT

# The settings of the binary: "ENV FLAG DEFAULT" lines, from --help (or from src/core/config.c when there is
# no binary to ask).
settings_table() {
    if [ -x "$BIN" ]; then
        "$BIN" --help | awk '/^  --[a-z-]+ +[A-Z_]+ +/ { print $2, $1, $3 }'
    else
        python3 -c '
import re, sys
src = open(sys.argv[1]).read()
for flag, env, default in re.findall(r"\{\"(--[a-z-]+)\", \"([A-Z_]+)\", OPT_[A-Z]+, \"([^\"]*)\"", src):
    print(env, flag, default or "(none)")' "$ROOT/src/core/config.c"
    fi
}
settings_table >"$TMP/settings.txt"
echo "settings: $(wc -l <"$TMP/settings.txt") from $( [ -x "$BIN" ] && echo "$BIN --help" || echo src/core/config.c)"

# ---------------------------------------------------------------------------------------------------- compose
if have python3 && python3 -c 'import yaml' 2>/dev/null; then
    pycheck "$COMPOSE" "$TMP/settings.txt" "$DOCKERFILE" <<'PY'
import re, sys, yaml
path, settings_path, dockerfile = sys.argv[1:4]
settings = {l.split()[0]: l.split()[2] for l in open(settings_path) if l.strip()}
def check(name, cond, why=""):
    print(("ok " if cond else "FAIL ") + name + ("" if cond else ": " + why))
try:
    d = yaml.safe_load(open(path))
except Exception as e:
    check("compose: YAML parses", False, str(e)); sys.exit()
check("compose: YAML parses", isinstance(d, dict))
svc = d.get("services", {})
check("compose: services db, salesops-1, salesops-2, proxy", sorted(svc) == ["db", "proxy", "salesops-1", "salesops-2"], str(sorted(svc)))
db = svc.get("db", {})
check("compose: db is postgres:15 with a health check and a volume", db.get("image") == "postgres:15"
      and "healthcheck" in db and any(str(v).endswith(":/var/lib/postgresql/data") for v in db.get("volumes", [])), str(db)[:200])
s1, s2 = svc.get("salesops-1", {}), svc.get("salesops-2", {})
check("compose: the two replicas have one definition", s1 == s2 and bool(s1))
env = s1.get("environment", {})
check("compose: DATABASE_URL, SALESOPS_LISTEN=0.0.0.0:8080, SALESOPS_THREADS set", "DATABASE_URL" in env
      and env.get("SALESOPS_LISTEN") == "0.0.0.0:8080" and "SALESOPS_THREADS" in env)
unknown = [k for k in env if k not in settings and not k.startswith("PG")]
check("compose: every salesops variable is a real setting", not unknown, str(unknown))
hc = " ".join(map(str, s1.get("healthcheck", {}).get("test", [])))
check("compose: salesops health check asks /readyz", "/readyz" in hc and "127.0.0.1:8080" in hc, hc)
runtime = open(dockerfile).read().split("FROM debian:12-slim", 1)[-1]
check("compose: the health check's tool is in the runtime image", hc.split()[1] != "curl" or re.search(r"\bcurl\b", runtime) is not None, hc)
def seconds(v):
    m = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(v))
    return int(m.group(1) or 0) * 60 + int(m.group(2) or 0) if m and v else 10
grace = env.get("SALESOPS_SHUTDOWN_GRACE_S", settings.get("SALESOPS_SHUTDOWN_GRACE_S", "10"))
grace = int(re.sub(r"^\$\{[A-Z_]+:-(\d+)\}$", r"\1", str(grace)))
stop = seconds(s1.get("stop_grace_period"))
check("compose: stop_grace_period (%ds) longer than SALESOPS_SHUTDOWN_GRACE_S (%ds)" % (stop, grace), stop > grace + 5)
check("compose: SALESOPS_PER_IP_CONNECTIONS is 0 behind the proxy", str(env.get("SALESOPS_PER_IP_CONNECTIONS")) == "0")
proxy = svc.get("proxy", {})
check("compose: proxy is nginx with docker/nginx.conf mounted read-only",
      str(proxy.get("image", "")).startswith("nginx:") and "./nginx.conf:/etc/nginx/nginx.conf:ro" in proxy.get("volumes", []))
check("compose: proxy publishes 8080 and waits for both replicas to be healthy",
      any(str(p).endswith(":8080") for p in proxy.get("ports", []))
      and all(proxy.get("depends_on", {}).get(s, {}).get("condition") == "service_healthy" for s in ("salesops-1", "salesops-2")))
# secrets: a password is only ever an interpolation whose default says it is for dev
text = open(path).read()
bad = [l.strip() for l in text.splitlines() if re.search(r"PASSWORD\s*:", l) and not re.search(r"\$\{[A-Z_]+:-[^}]*dev[^}]*\}", l)]
bad += [l.strip() for l in text.splitlines() if re.search(r"postgres(ql)?://[^@/\s]*:[^@/\s]*@", l)]
check("compose: no committed secrets (only ${VAR:-...dev...} defaults)", not bad, str(bad))
PY
else
    skip "compose" "python3 with PyYAML not found"
fi

if have docker-compose; then
    # a copy without `name:`, read as if it were in docker/ (relative paths, docker/.env)
    sed '/^name: /d' "$COMPOSE" >"$TMP/compose-v1.yaml"
    if out=$(cd "$TMP" && docker-compose --project-directory "$ROOT/docker" -f "$TMP/compose-v1.yaml" config -q 2>&1); then
        ok "compose-v1: docker-compose $(docker-compose version --short 2>/dev/null) config accepts it"
    else
        bad "compose-v1: docker-compose config" "$out"
    fi
else
    skip "compose-v1" "docker-compose not installed (apt-get install docker-compose)"
fi
if have docker && docker compose version >/dev/null 2>&1; then
    if out=$(docker compose -f "$COMPOSE" config -q 2>&1); then
        ok "compose-v2: docker compose $(docker compose version --short 2>/dev/null) config accepts it"
    else
        bad "compose-v2: docker compose config" "$out"
    fi
else
    skip "compose-v2" "the docker compose plugin is not installed"
fi

# --------------------------------------------------------------------------------------------------- settings
if have python3; then
    pycheck "$TMP/settings.txt" "$ENV_EXAMPLE" "$DEPLOY" <<'PY'
import re, sys
settings_path, env_example, deploy = sys.argv[1:4]
rows = [l.split() for l in open(settings_path) if l.strip()]
example = open(env_example).read()
missing = [env for env, flag, default in rows if not re.search(r"^#?%s=" % env, example, re.M)]
print(("ok " if not missing else "FAIL ") + "settings: all %d in docker/salesops.env.example" % len(rows)
      + ("" if not missing else ": missing " + ", ".join(missing)))
doc = open(deploy).read()
table = {}
for m in re.finditer(r"^\| `([A-Z_]+)` \| `(--[a-z-]+)` \| `?([^`|]*?)`? \|", doc, re.M):
    table[m.group(1)] = (m.group(2), m.group(3).strip())
wrong = []
for env, flag, default in rows:
    if env not in table:
        wrong.append(env + " missing")
    elif table[env] != (flag, default):
        wrong.append("%s: doc says %s %s, binary %s %s" % (env, table[env][0], table[env][1], flag, default))
extra = sorted(set(table) - {r[0] for r in rows})
print(("ok " if not wrong and not extra else "FAIL ") + "settings: DEPLOY.md's table has all %d, with the binary's flags and defaults" % len(rows)
      + ("" if not wrong and not extra else ": " + "; ".join(wrong + ["not a setting: " + e for e in extra])))
PY
else
    skip "settings" "python3 not found"
fi

# ------------------------------------------------------------------------------------------------------ image
if [ -x "$BIN" ] && have readelf && have dpkg; then
    runtime=$(sed -n '/^FROM debian:12-slim/,$p' "$DOCKERFILE")
    missing=()
    while read -r lib; do
        case $lib in libasan* | libubsan* | libtsan*) continue ;; esac
        path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64|x86_64|64bit/ { print $NF; exit }')
        pkg=$(dpkg -S "$path" 2>/dev/null | head -n 1 | cut -d: -f1)
        [ -n "$pkg" ] || pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -n 1 | cut -d: -f1)
        case $pkg in libc6 | "") continue ;; esac
        grep -qw -- "$pkg" <<<"$runtime" || missing+=("$lib ($pkg)")
    done < <(readelf -d "$BIN" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
    check "image: the runtime stage installs every library the binary links" "" "${missing[*]}"
else
    skip "image" "needs the binary, readelf and dpkg"
fi
if grep -q '^HEALTHCHECK .*readyz' "$DOCKERFILE" || grep -A1 '^HEALTHCHECK' "$DOCKERFILE" | grep -q readyz; then
    ok "image: HEALTHCHECK asks /readyz"
else
    bad "image: HEALTHCHECK asks /readyz"
fi

# ------------------------------------------------------------------------------------------------------ nginx
NGINX_OK=0
if have nginx; then
    NGINX_OK=1
    nginx_version=$(nginx -v 2>&1 | sed 's#.*nginx/##')
    # the copy: the replicas become ports on loopback; `resolve` (nginx >= 1.27.3) goes when nginx is older
    P1=$(free_port); P2=$(free_port); PX=$(free_port)
    adapt_nginx() { # output file
        local resolve_sed='s/ resolve / /'
        if printf '%s\n%s\n' 1.27.3 "$nginx_version" | sort -V -C; then resolve_sed='s/^$//'; fi
        sed -e 's/^user nginx;/# (user: as started)/' -e "s#^pid .*#pid $TMP/nginx.pid;#" \
            -e "s#error_log /dev/stderr#error_log $TMP/nginx.error.log#" \
            -e "s#access_log /dev/stdout#access_log $TMP/nginx.access.log#" \
            -e "s/salesops-1:8080/127.0.0.1:$P1/" -e "s/salesops-2:8080/127.0.0.1:$P2/" \
            -e "s/listen 8080;/listen 127.0.0.1:$PX;/" -e "$resolve_sed" "$NGINX_CONF" >"$1"
        # temp files of a non-root test run
        sed -i "s#^http {#http {\n    client_body_temp_path $TMP/nginx-body;\n    proxy_temp_path $TMP/nginx-proxy;#" "$1"
    }
    adapt_nginx "$TMP/nginx.conf"
    if out=$(nginx -t -q -c "$TMP/nginx.conf" 2>&1); then
        ok "nginx: nginx $nginx_version -t accepts docker/nginx.conf (adapted copy)"
    else
        bad "nginx: nginx -t on docker/nginx.conf" "$out"
        NGINX_OK=0
    fi
    # DEPLOY.md's TLS example: the ```nginx block after the marker, inside an http block
    awk '/<!-- check_deploy: nginx-tls -->/ { f = 1; next } f && /^```nginx/ { p = 1; next } p && /^```/ { exit } p' \
        "$DEPLOY" >"$TMP/deploy-tls.conf"
    if [ ! -s "$TMP/deploy-tls.conf" ]; then
        bad "nginx: DEPLOY.md's TLS example" "no \`\`\`nginx block after <!-- check_deploy: nginx-tls -->"
    elif ! have openssl; then
        skip "nginx: DEPLOY.md's TLS example" "openssl not found (for a test certificate)"
    else
        openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=salesops.example.com \
            -keyout "$TMP/tls.key" -out "$TMP/tls.crt" >/dev/null 2>&1
        sed -i -e "s#ssl_certificate .*#ssl_certificate $TMP/tls.crt;#" \
            -e "s#ssl_certificate_key .*#ssl_certificate_key $TMP/tls.key;#" \
            -e "s#/var/log/nginx/#$TMP/#g" -e 's/ resolve / /' "$TMP/deploy-tls.conf"
        # nginx -t binds the listen addresses: each becomes a free port on loopback
        python3 - "$TMP/deploy-tls.conf" <<'PY'
import re, socket, sys
held = []  # open until every port is chosen: a port closed at once can be handed out again (two servers on one)
def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); held.append(s); return s.getsockname()[1]
path = sys.argv[1]
text = re.sub(r"^(\s*listen\s+)\S+?(\s[^;]*)?;", lambda m: "%s127.0.0.1:%d%s;" % (m.group(1), port(), m.group(2) or ""),
              open(path).read(), flags=re.M)
open(path, "w").write(text)
for s in held:
    s.close()
PY
        printf 'pid %s/nginx-tls.pid;\nerror_log %s/nginx-tls.error.log;\nevents {}\nhttp {\n    client_body_temp_path %s/b;\n    proxy_temp_path %s/p;\n    include %s/deploy-tls.conf;\n}\n' \
            "$TMP" "$TMP" "$TMP" "$TMP" "$TMP" >"$TMP/nginx-tls.conf"
        if out=$(nginx -t -q -c "$TMP/nginx-tls.conf" 2>&1); then
            ok "nginx: nginx $nginx_version -t accepts DEPLOY.md's TLS example"
        else
            bad "nginx: nginx -t on DEPLOY.md's TLS example" "$out"
        fi
    fi
else
    skip "nginx" "nginx not installed (apt-get install nginx-light)"
fi

# ---------------------------------------------------------------------------------------------------- systemd
if have systemd-analyze; then
    mkdir -p "$TMP/units"
    exe=$BIN
    [ -x "$exe" ] || exe=/bin/true
    sed "s#/usr/local/bin/salesops#$exe#" "$UNIT" >"$TMP/units/salesops.service"
    sed "s#/usr/local/bin/salesops#$exe#" "$UNIT_TEMPLATE" >"$TMP/units/salesops@8081.service"
    for u in salesops.service salesops@8081.service; do
        if out=$(cd "$TMP/units" && systemd-analyze verify "./$u" 2>&1) && [ -z "$out" ]; then
            ok "systemd: systemd-analyze verify $u"
        else
            bad "systemd: systemd-analyze verify $u" "$out"
        fi
    done
else
    skip "systemd" "systemd-analyze not found"
fi
for u in "$UNIT" "$UNIT_TEMPLATE"; do
    name=$(basename "$u")
    want=(User=salesops EnvironmentFile=/etc/salesops/salesops.env Restart=on-failure KillSignal=SIGTERM
        NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes LimitNOFILE=)
    missing=()
    for w in "${want[@]}"; do grep -q "^$w" "$u" || missing+=("$w"); done
    check "systemd: $name has user, env file, restart, SIGTERM, hardening, LimitNOFILE" "" "${missing[*]}"
    stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\{0,1\}$/\1/p' "$u")
    grace=$(awk '$1 == "SALESOPS_SHUTDOWN_GRACE_S" { print $3 }' "$TMP/settings.txt")
    if [ -n "$stop" ] && [ "$stop" -gt "${grace:-10}" ]; then
        ok "systemd: $name TimeoutStopSec (${stop}s) longer than the shutdown grace (${grace:-10}s)"
    else
        bad "systemd: $name TimeoutStopSec (${stop:-none}) longer than the shutdown grace (${grace:-10}s)"
    fi
done
if grep -q -- '--listen 127.0.0.1:%i' "$UNIT_TEMPLATE"; then
    ok "systemd: salesops@.service listens on 127.0.0.1:%i"
else
    bad "systemd: salesops@.service listens on 127.0.0.1:%i"
fi

# ------------------------------------------------------------------------------------------------------ smoke
smoke_skip=""
[ -x "$BIN" ] || smoke_skip="no binary at $BIN"
[ -n "$smoke_skip" ] || [ "$NGINX_OK" = 1 ] || smoke_skip="nginx missing or its config failed"
[ -n "$smoke_skip" ] || pg_bindir >/dev/null 2>&1 || smoke_skip="PostgreSQL server binaries not found"
[ -n "$smoke_skip" ] || have curl || smoke_skip="curl not found"
if [ -n "$smoke_skip" ]; then
    skip "smoke" "$smoke_skip"
else
    smoke() {
        local url key token n rid code hc
        if ! pg_start "$TMP/pgdata" --no-fsync >/dev/null 2>&1 || ! pg_create_db deploy >/dev/null 2>&1; then
            bad "smoke: private PostgreSQL" "did not start"
            return
        fi
        url=$(pg_url deploy)
        # the compose settings, as each replica gets them
        local env=(DATABASE_URL="$url" SALESOPS_THREADS=4 SALESOPS_SCHED_THREADS=2 SALESOPS_PER_IP_CONNECTIONS=0
            SALESOPS_SHUTDOWN_GRACE_S=10 SALESOPS_LOG_LEVEL=info)
        # instance 1 by SALESOPS_LISTEN, instance 2 by --listen as salesops@.service does; both migrate at once
        env "${env[@]}" SALESOPS_LISTEN="127.0.0.1:$P1" "$BIN" serve >"$TMP/serve1.out" 2>"$TMP/serve1.err" &
        SERVE_PIDS+=($!)
        env "${env[@]}" "$BIN" serve --listen "127.0.0.1:$P2" >"$TMP/serve2.out" 2>"$TMP/serve2.err" &
        SERVE_PIDS+=($!)
        nginx -c "$TMP/nginx.conf" -g 'daemon off;' >"$TMP/nginx.out" 2>&1 &
        NGINX_PID=$!
        local proxy="http://127.0.0.1:$PX"
        for _ in $(seq 1 100); do
            curl -sf -o /dev/null "http://127.0.0.1:$P1/readyz" && curl -sf -o /dev/null "http://127.0.0.1:$P2/readyz" \
                && curl -s -o /dev/null "$proxy/healthz" && break
            sleep 0.2
        done
        # the health check command of compose.yaml, pointed at instance 1
        hc=$(python3 -c 'import sys, yaml; print("\0".join(yaml.safe_load(open(sys.argv[1]))["services"]["salesops-1"]["healthcheck"]["test"][1:]))' "$COMPOSE" 2>/dev/null \
            | tr '\0' '\n' | sed "s#127.0.0.1:8080#127.0.0.1:$P1#")
        mapfile -t hc_cmd <<<"$hc"
        if [ -n "$hc" ] && "${hc_cmd[@]}"; then ok "smoke: compose's health check passes on a ready instance"; else bad "smoke: compose's health check passes on a ready instance" "${hc_cmd[*]}"; fi

        local acct
        acct=$(DATABASE_URL="$url" "$BIN" account create --name "Deploy check" 2>/dev/null)
        key=$(account_fields <<<"$acct" | sed -n 2p)
        token=$(account_fields <<<"$acct" | sed -n 3p)
        check "smoke: account create prints an admin key and a webhook token" "sok_ whk_" "${key:0:4} ${token:0:4}"

        check "smoke: GET / through the proxy is the page" "200 text/html; charset=utf-8" \
            "$(curl -s -o /dev/null -w '%{http_code} %{content_type}' "$proxy/")"
        check "smoke: GET /readyz through the proxy" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$proxy/readyz")"
        check "smoke: GET /api/v1/account through the proxy" 200 \
            "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" "$proxy/api/v1/account")"
        check "smoke: /metrics is refused by the proxy" 403 "$(curl -s -o /dev/null -w '%{http_code}' "$proxy/metrics")"
        curl -s "http://127.0.0.1:$P1/metrics" >"$TMP/metrics.txt"
        check "smoke: /metrics answers on the instance itself" 1 \
            "$(grep -c '^salesops_database_up 1$' "$TMP/metrics.txt")"

        rid=$(curl -s -o /dev/null -D - -H 'X-Request-Id: deploy-check-42' "$proxy/healthz" | tr -d '\r' \
            | awk -F': ' 'tolower($1) == "x-request-id" { print $2 }')
        check "smoke: the client's X-Request-Id reaches salesops and comes back" deploy-check-42 "$rid"
        check "smoke: ... and is in the instance's log" 1 \
            "$(cat "$TMP"/serve*.err | grep -c '"request_id":"deploy-check-42"')"
        rid=$(curl -s -o /dev/null -D - "$proxy/healthz" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-request-id" { print $2 }')
        if [[ $rid =~ ^[0-9a-f]{32}$ ]] && [ "$(cat "$TMP"/serve*.err | grep -c "\"request_id\":\"$rid\"")" = 1 ]; then
            ok "smoke: without one, nginx's \$request_id is forwarded and used"
        else
            bad "smoke: without one, nginx's \$request_id is forwarded and used" "got '$rid'"
        fi

        for _ in $(seq 1 20); do curl -s -o /dev/null -H "Authorization: Bearer $key" "$proxy/api/v1/account"; done
        local c1 c2
        c1=$(grep -c '"path":"/api/v1/account"' "$TMP/serve1.err")
        c2=$(grep -c '"path":"/api/v1/account"' "$TMP/serve2.err")
        if [ "$c1" -gt 0 ] && [ "$c2" -gt 0 ]; then
            ok "smoke: the proxy uses both instances ($c1 and $c2 of 21 requests)"
        else
            bad "smoke: the proxy uses both instances" "$c1 and $c2"
        fi

        # 16 MiB bodies: a 15 MiB body reaches salesops (its answer, not nginx's 413); 17 MiB does not
        head -c $((15 * 1024 * 1024)) /dev/zero | tr '\0' 'x' >"$TMP/big15"
        code=$(curl -s -o "$TMP/big.out" -w '%{http_code} %{content_type}' -H "Authorization: Bearer $key" \
            -H 'Content-Type: application/x-ndjson' --data-binary @"$TMP/big15" "$proxy/api/v1/events")
        # salesops answers (JSON: 200 with the line rejected, or a 4xx problem), not nginx's HTML 413
        if [[ $code == [24]??\ application/* ]] && [[ $code != 413* ]]; then
            ok "smoke: a 15 MiB POST /api/v1/events passes the proxy (salesops answers ${code%% *})"
        else
            bad "smoke: a 15 MiB POST /api/v1/events passes the proxy" "$code"
        fi
        head -c $((17 * 1024 * 1024)) /dev/zero | tr '\0' 'x' >"$TMP/big17"
        check "smoke: a 17 MiB body is refused" 413 "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" \
            -H 'Content-Type: application/x-ndjson' --data-binary @"$TMP/big17" "$proxy/api/v1/events")"
        rm -f "$TMP/big15" "$TMP/big17"

        # an amoCRM webhook through the proxy; its token stays out of every log
        code=$(curl -s -o /dev/null -w '%{http_code}' "$proxy/api/v1/webhooks/amocrm/$token" \
            --data 'leads[add][0][id]=91000001&leads[add][0][name]=Deploy&leads[add][0][status_id]=55012002&leads[add][0][pipeline_id]=6101001&leads[add][0][price]=1000&account[subdomain]=acme')
        check "smoke: an amoCRM webhook through the proxy is stored" 200 "$code"
        check "smoke: the proxy's access log masks the webhook token" "1 0" \
            "$(grep -c '"path":"/api/v1/webhooks/amocrm/{webhook_token}"' "$TMP/nginx.access.log") $(grep -c -- "$token" "$TMP/nginx.access.log")"
        check "smoke: no instance logs the webhook token or the key" 0 "$(cat "$TMP"/serve*.err | grep -c -e "$token" -e "$key")"
        check "smoke: the access log is JSON lines" "" \
            "$(python3 -c 'import json, sys
for l in open(sys.argv[1]): json.loads(l)' "$TMP/nginx.access.log" 2>&1 | tail -n 1)"

        # the metric names DEPLOY.md lists are the ones the binary serves
        local names missing=()
        names=$(grep -o '`salesops_[a-z_]*' "$DEPLOY" | tr -d '`' | sort -u)
        for n in $names; do
            grep -q "^# TYPE $n " "$TMP/metrics.txt" || missing+=("$n")
        done
        if [ -n "$names" ] && [ ${#missing[@]} -eq 0 ]; then
            ok "smoke: the $(wc -w <<<"$names") metric families DEPLOY.md names are all served"
        else
            bad "smoke: the metric families DEPLOY.md names are all served" "not served: ${missing[*]:-DEPLOY.md names none}"
        fi

        # backup and restore drill: dump, restore into a new database, serve it, same key
        if "$PG_BIN/pg_dump" -Fc -f "$TMP/deploy.dump" "$url" 2>"$TMP/dump.err" && pg_create_db restored >/dev/null 2>&1 \
            && "$PG_BIN/pg_restore" --no-owner --exit-on-error -d "$(pg_url restored)" "$TMP/deploy.dump" 2>"$TMP/restore.err"; then
            local P3
            P3=$(free_port)
            DATABASE_URL="$(pg_url restored)" SALESOPS_THREADS=2 SALESOPS_SCHED_THREADS=0 "$BIN" serve --listen "127.0.0.1:$P3" \
                >"$TMP/serve3.out" 2>"$TMP/serve3.err" &
            SERVE_PIDS+=($!)
            for _ in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:$P3/readyz" && break; sleep 0.2; done
            check "smoke: restore drill: the restored copy is ready and knows the key" "200 200" \
                "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P3/readyz") $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" "http://127.0.0.1:$P3/api/v1/account")"
        else
            bad "smoke: restore drill" "$(cat "$TMP/dump.err" "$TMP/restore.err" 2>/dev/null | head -c 300)"
        fi

        # failover: instance 1 stops (SIGTERM, as docker stop and systemctl stop do); everything still answers
        kill -TERM "${SERVE_PIDS[0]}"
        for _ in $(seq 1 100); do kill -0 "${SERVE_PIDS[0]}" 2>/dev/null || break; sleep 0.1; done
        wait "${SERVE_PIDS[0]}" 2>/dev/null
        check "smoke: SIGTERM stops an instance with status 0" 0 "$?"
        local codes=""
        for _ in $(seq 1 10); do
            codes+=$(curl -s -o /dev/null -w '%{http_code} ' -H "Authorization: Bearer $key" "$proxy/api/v1/account")
        done
        check "smoke: with one instance stopped, the proxy still answers every request" \
            "200 200 200 200 200 200 200 200 200 200 " "$codes"
        if "${hc_cmd[@]}" 2>/dev/null; then bad "smoke: compose's health check fails on a stopped instance"; else ok "smoke: compose's health check fails on a stopped instance"; fi
    }
    smoke
fi

summary="$passed passed, $failed failed"
[ "$skipped" -eq 0 ] || summary="$summary, $skipped skipped"
echo "$summary"
[ "$failed" -eq 0 ]
