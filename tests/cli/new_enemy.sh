# new_enemy.sh -- Zanzibar's "new enemy" problem, end to end through the
# CLI with a separate process per query: once a revoke or a namespace move
# has returned, no later query in any process may return the document.
# Also: a query pinned with --min-revision to a revision the store has not
# reached is refused, not answered from an older snapshot.
. "$(dirname "$0")/common.inc"
D="$T/c"
w init "$D" --dim 2 --metric ip
expect_rc 0 "init"
cat > "$T/docs.jsonl" <<'JSONL'
{"doc_id":"plan.md","source":"s3://b/plan.md","namespace":"/team-a","acl":{"allow":["group:staff"]},"chunks":[{"text":"the secret plan","embedding":[1,0]}]}
{"doc_id":"menu.md","source":"s3://b/menu.md","namespace":"/team-a","acl":{"allow":["group:staff"]},"chunks":[{"text":"lunch menu","embedding":[0,1]}]}
JSONL
w ingest "$D" "$T/docs.jsonl"
expect_rc 0 "ingest"
sees() { # sees DOC_ID ARGS... -> prints yes/no
  doc=$1; shift
  "$WARDEN" query "$D" --principal user:eve --groups group:staff --vector '[1,0]' -k 10 "$@" |
    "$PY" -c "import json,sys; r=json.load(sys.stdin); print('yes' if any(h['doc_id']==sys.argv[1] for h in r['results']) else 'no')" "$doc"
}
i=0
while [ $i -lt 20 ]; do
  [ "$(sees plan.md --namespace /team-a)" = yes ] || fail "round $i: plan.md not visible before the move"
  # move plan.md to a namespace eve's queries are not scoped to
  sed 's#"/team-a"#"/team-b"#' "$T/docs.jsonl" | head -1 > "$T/move.jsonl"
  w ingest "$D" "$T/move.jsonl"
  expect_rc 0 "move round $i"
  [ "$(sees plan.md --namespace /team-a)" = no ] || fail "round $i: plan.md still visible in /team-a after the move returned"
  # move it back, then revoke eve's group
  head -1 "$T/docs.jsonl" > "$T/back.jsonl"
  w ingest "$D" "$T/back.jsonl"
  expect_rc 0 "move back round $i"
  w acl set "$D" plan.md --allow group:board
  expect_rc 0 "revoke round $i"
  rev=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['revision'])" "$T/out")
  [ "$(sees plan.md --min-revision "$rev")" = no ] || fail "round $i: plan.md visible after the revoke returned"
  w acl set "$D" plan.md --allow group:staff
  expect_rc 0 "re-grant round $i"
  i=$((i + 1))
done
# a revision the store has not reached: refused, exit 1, clear message
w query "$D" --principal user:eve --vector '[1,0]' --min-revision 999999
expect_rc 1 "min-revision ahead of the store"
expect_err_prefix "min-revision" "query: "
finish
