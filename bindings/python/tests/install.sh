#!/bin/sh
# The README's install commands, offline: a venv that sees Debian's numpy,
# `pip install --no-build-isolation ./bindings/python`, then the installed
# package (not the source tree) finds build/libwarden.so and answers a query.
set -e
cd "$(dirname "$0")/../../.."
repo=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 -m venv --system-site-packages "$tmp/venv"
# a copy of the package directory: pip's in-tree build must not litter the repo
cp -r bindings/python "$tmp/src"
rm -rf "$tmp/src/build" "$tmp/src"/*.egg-info
WARDEN_LIBRARY="$repo/build/libwarden.so" "$tmp/venv/bin/pip" install --no-index \
    --no-build-isolation -q "$tmp/src"
cd "$tmp"
env -u WARDEN_LIBRARY "$tmp/venv/bin/python" - <<'PY'
import os, tempfile, numpy as np, warden
assert "site-packages" in warden.__file__, warden.__file__
col = warden.Collection.create(os.path.join(tempfile.mkdtemp(), "kb"), dim=2)
col.upsert([{"doc_id": "a", "source": "s3://b/a", "acl": {"allow": ["*"]}, "chunks": ["x"]}],
           np.ones((1, 2), np.float32))
assert [h.doc_id for h in col.query([1, 1], principal="user:u")] == ["a"]
print("installed warden", warden.__version__, "uses", warden.LIBRARY_PATH)
PY
