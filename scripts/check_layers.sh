#!/usr/bin/env bash
# The layer rules of the architecture, checked: src/http and src/api never include libpq; src/store never
# includes libmicrohttpd; src/domain includes neither. Prints "N passed, M failed".
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
passed=0 failed=0
rule() { # description, directory, pattern
    local hits
    hits=$(grep -rnE "$3" "$2" --include='*.c' --include='*.h' || true)
    if [ -z "$hits" ]; then
        passed=$((passed + 1)); echo "ok   $1"
    else
        failed=$((failed + 1)); echo "FAIL $1:"; echo "$hits" | sed 's/^/    /'
    fi
}
rule "src/http does not include libpq" src/http '#include[[:space:]]*<libpq'
rule "src/api does not include libpq" src/api '#include[[:space:]]*<libpq'
rule "src/store does not include libmicrohttpd" src/store '#include[[:space:]]*<microhttpd'
rule "src/domain includes neither libpq nor libmicrohttpd" src/domain '#include[[:space:]]*<(libpq|microhttpd)'
rule "src/api does not include libmicrohttpd" src/api '#include[[:space:]]*<microhttpd'
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
