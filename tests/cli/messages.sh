#!/bin/sh
# messages.sh -- an error line is never cut, whatever its length: the CLI
# formats messages into a buffer of their own size (it used a fixed 4 KiB
# one, which dropped the end of a long message), and the one-line,
# `warden: ` contract still holds.  Also: -k and --dim out of range name
# the library constant they are checked against.
. "$(dirname "$0")/common.inc"

long=$("$PY" -c 'print("--" + "x" * 6000)')
w query "$T/c" --principal user:a --vector '[1]' "$long"
expect_rc 2 "a 6000-byte unknown option"
py_check "the whole option is in the message" '
lines = err.splitlines()
assert len(lines) == 1, len(lines)
want = "warden: query: unknown option \x27" + args[0] + "\x27 (see \x27warden query --help\x27)"
assert lines[0] == want, (len(lines[0]), len(want), lines[0][-80:])
' "$long"

w init "$T/k" --dim 4
expect_rc 0 "init"
w query "$T/k" --principal user:a --vector '[1,0,0,0]' -k 10001
expect_rc 2 "-k 10001"
expect_err_prefix "-k names WARDEN_MAX_K" "query: -k: 10001 is out of range \[1, 10000\] (WARDEN_MAX_K)"
w init "$T/d" --dim 65537
expect_rc 2 "--dim 65537"
expect_err_prefix "--dim names WARDEN_MAX_DIM" "init: --dim: 65537 is out of range \[1, 65536\] (WARDEN_MAX_DIM)"

finish
