-- pgbench script for bench/run_ingest.sh: the database's side of one amoCRM webhook, alone. The service's
-- handler stores each body as one single-row INSERT in its own transaction (src/store/inbox.c,
-- stmt_inbox_insert_webhook); this is the same INSERT, with a body of the same size (body_len: the mean
-- length of the bodies the service stored in the same run) and a random SHA-256 as its hash.
--
-- state: 'pending' as the service stores it; bench/run passes 'ignored', so that the service's appliers,
-- running beside pgbench on the same database, leave these rows alone (the INSERT costs the same).
--   pgbench -M prepared -n -c 64 -j 2 -T 15 -D account_id=ID -D body_len=N -D state=pending -f bench/ingest.sql DB
\set n random(1, 2000000000)
INSERT INTO inbox (account_id, source, body, body_hash, state)
VALUES (:account_id, 'amocrm',
        rpad(:n::text || '&', :body_len, 'leads%5Badd%5D%5B0%5D%5Bname%5D=%D0%97%D0%B0%D1%8F%D0%B2%D0%BA%D0%B0&'),
        sha256(convert_to(random()::text || :n::text, 'UTF8')), :state)
RETURNING id;
