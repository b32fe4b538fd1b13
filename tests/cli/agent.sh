#!/bin/sh
# agent.sh -- on-behalf-of queries through the CLI (`warden query --agent`):
# a chunk comes back only if both the principal and the agent may read it
# (each with asserted and directory groups, deny wins for either), the
# plan names the agent, the audit line records both identities and the
# evidence for each, a revoke for the agent alone is visible to the next
# query, and a malformed agent is a usage error.
. "$(dirname "$0")/common.inc"

D=$T/c
cat >"$T/warden.yaml" <<'YEOF'
dimension: 2
metric: cosine
audit:
  path: audit.jsonl
YEOF
w init "$D" --config "$T/warden.yaml"
expect_rc 0 "init"
cat >"$T/docs.jsonl" <<'JEOF'
{"doc_id": "both", "source": "s3://b/both", "acl": {"allow": ["user:alice", "group:bots"]}, "chunks": [{"text": "t1", "embedding": [1, 0]}]}
{"doc_id": "user-only", "source": "s3://b/user-only", "acl": {"allow": ["user:alice"]}, "chunks": [{"text": "t2", "embedding": [1, 0.1]}]}
{"doc_id": "agent-only", "source": "s3://b/agent-only", "acl": {"allow": ["group:bots"]}, "chunks": [{"text": "t3", "embedding": [1, 0.2]}]}
{"doc_id": "deny-agent", "source": "s3://b/deny-agent", "acl": {"allow": ["*"], "deny": ["user:bot"]}, "chunks": [{"text": "t4", "embedding": [1, 0.3]}]}
{"doc_id": "deny-asserted", "source": "s3://b/deny-asserted", "acl": {"allow": ["*"], "deny": ["group:untrusted"]}, "chunks": [{"text": "t5", "embedding": [1, 0.4]}]}
{"doc_id": "public", "source": "s3://b/public", "acl": {"allow": ["*"]}, "chunks": [{"text": "t6", "embedding": [1, 0.5]}]}
JEOF
w ingest "$D" "$T/docs.jsonl"
expect_rc 0 "ingest"
w principals set "$D" user:bot --groups group:bots
expect_rc 0 "principals set (bot in group:bots)"

# ids ARGS...: the sorted doc_ids of one query, comma-joined, in $ids.
ids() {
  w query "$D" --vector '[1,0]' -k 10 "$@"
  expect_rc 0 "query $*" || { ids=ERR; return; }
  ids=$("$PY" -c 'import json,sys; print(",".join(sorted(h["doc_id"] for h in json.loads(open(sys.argv[1]).readline())["results"])))' "$T/out")
}
want() { CHECKS=$((CHECKS + 1)); [ "$ids" = "$1" ] || fail "$2: got '$ids', expected '$1'"; }

ids --principal user:alice
want "both,deny-agent,deny-asserted,public,user-only" "alice alone"
ids --principal user:bot
want "agent-only,both,deny-asserted,public" "the agent alone"
ids --principal user:alice --agent user:bot
want "both,deny-asserted,public" "alice through the agent: the intersection"
ids --principal user:alice --agent user:bot --agent-groups group:untrusted
want "both,public" "a group asserted for the agent: its deny wins"
ids --principal user:alice --agent user:bot --namespace / --filter '{"nokey": {"$ne": 1}}'
want "both,deny-asserted,public" "with a namespace and a filter"

# The plan names the agent and its expanded groups.
w query "$D" --vector '[1,0]' --principal user:alice --agent user:bot --explain
expect_rc 0 "explain"
py_check "plan names the agent" '
a = out[0]["plan"]["agent"]
assert a == {"principal": "user:bot", "groups": ["group:bots"]}, a
'
w query "$D" --vector '[1,0]' --principal user:alice --explain
py_check "no agent, no agent in the plan" 'assert "agent" not in out[0]["plan"], out[0]["plan"]'

# The audit line records both identities and the evidence for each.
w query "$D" --vector '[1,0]' --principal user:alice --agent user:bot --agent-groups group:helpers -k 1
expect_rc 0 "audited query"
CHECKS=$((CHECKS + 1))
"$PY" - "$D/audit.jsonl" <<'PYEOF' || fail "audit line lacks the agent or its evidence"
import json, sys
rec = json.loads(open(sys.argv[1]).read().splitlines()[-1])
assert rec["principal"] == "user:alice" and rec["agent"] == "user:bot", rec
assert rec["agent_asserted_groups"] == ["group:helpers"], rec
assert sorted(rec["agent_groups"]) == ["group:bots", "group:helpers"], rec
(h,) = rec["results"]
assert h["doc_id"] == "both" and h["acl"] == "user:alice", h
assert h["agent_acl"] == "group:bots via user:bot", h
PYEOF

# A revoke for the agent alone is visible to the next query.
w acl set "$D" both --deny user:bot
expect_rc 0 "deny the agent on 'both'"
ids --principal user:alice --agent user:bot
want "deny-asserted,public" "after the agent's revoke"
ids --principal user:alice
want "both,deny-agent,deny-asserted,public,user-only" "alice alone still reads 'both'"

# Malformed input: the principal grammar, exit 2 (usage), nothing answered.
w query "$D" --vector '[1,0]' --principal user:alice --agent bot
expect_rc 2 "agent without user:/group:"
expect_err_prefix "bad agent" "query: agent: "
w query "$D" --vector '[1,0]' --principal user:alice --agent user:bot --agent-groups user:x
expect_rc 2 "agent group that is not group:NAME"
w query "$D" --vector '[1,0]' --principal user:alice --agent-groups group:bots
expect_rc 2 "--agent-groups without --agent"
finish
