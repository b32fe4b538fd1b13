#!/bin/sh
# cli_reference.sh -- the README's CLI reference documents the CLI that is
# built, no more and no less.
#
# The CLI's usage is generated from the option tables its parsers read
# (tools/help.c), so `warden --help` is the truth.  This script checks:
#   1. every command of `warden --help` is in the README's CLI reference
#      block, and every command there exists;
#   2. per command, the README's usage forms are the generated ones
#      (whitespace and trailing `# comments` aside), so every option of
#      every command is documented and nothing undocumented is listed;
#   3. `warden CMD --help` lists, one line each, exactly the options of
#      CMD's usage lines in `warden --help` (the two generated views agree);
#   4. every `--option` the README's CLI reference text mentions is an
#      option of some command.
# Usage: sh tests/cli_reference.sh [WARDEN [README]]
cd "$(dirname "$0")/.." || exit 1
W=${1:-${WARDEN:-build/warden}}
README=${2:-README.md}
[ -x "$W" ] || { echo "cli_reference: $W is not built"; exit 1; }
exec /usr/bin/python3 - "$W" "$README" <<'PYEOF'
import re, subprocess, sys

warden, readme = sys.argv[1], sys.argv[2]
errors = []
OPT = re.compile(r'(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])')


def run(*args):
    p = subprocess.run([warden, *args], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"cli_reference: {warden} {' '.join(args)} exited {p.returncode}: {p.stderr}")
    return p.stdout


def key_of(words):
    """'acl set DIR ...' -> 'acl set': the leading lower-case command words."""
    k = []
    for w in words:
        if not re.fullmatch(r'[a-z][a-z|]*', w):
            break
        k.append(w)
    return ' '.join(k)


def forms(lines, where):
    """Usage lines ('warden CMD ...' plus indented continuations) ->
    {command: [normalized form, ...]}."""
    out, cur = {}, None
    for raw in lines:
        line = re.sub(r'\s+#.*$', '', raw).rstrip()
        if not line.strip():
            continue
        s = line.strip()
        if s.startswith('warden ') and not line.startswith('    '):
            cur = s.split()[1:]
            out.setdefault(key_of(cur), []).append(cur)
        elif cur is not None and line.startswith(' '):
            cur.extend(s.split())
        else:
            errors.append(f"{where}: not a usage line: {raw!r}")
    return {k: [' '.join(f) for f in v] for k, v in out.items()}


def opts(text):
    return set(OPT.findall(text))


# ---- the generated usage: `warden --help`
main = run('--help').splitlines()
try:
    a = main.index('') + 1
    b = main.index('', a)
except ValueError:
    sys.exit("cli_reference: warden --help has no usage block")
gen = forms(main[a:b], 'warden --help')
if not gen:
    sys.exit("cli_reference: no commands in warden --help")

# ---- 3. per-command help agrees with the summary
for top in sorted({k.split()[0] for k in gen}):
    h = run(top, '--help').splitlines()
    u = []
    for line in h:
        if not line.strip():
            break
        u.append(re.sub(r'^usage: |^       ', '', line))
    sub = forms(u, f'warden {top} --help')
    mine = {k: v for k, v in gen.items() if k.split()[0] == top}
    if sub != mine:
        errors.append(f"warden {top} --help usage differs from warden --help:\n  {sub}\n  {mine}")
    listed = set()
    for line in h[len(u):]:
        m = re.match(r'^\s+(--[a-z][a-z0-9-]*|-[a-zA-Z])(\s|$)', line)
        if m:
            listed.add(m.group(1))
    used = set().union(*(opts(f) for v in mine.values() for f in v))
    if listed != used:
        errors.append(f"warden {top} --help: options listed {sorted(listed)} "
                      f"but its usage shows {sorted(used)}")

# ---- the README's CLI reference section and its first code block
text = open(readme, encoding='utf-8').read().splitlines()
try:
    start = text.index('## CLI reference')
except ValueError:
    sys.exit(f"cli_reference: {readme} has no '## CLI reference' section")
end = next((i for i in range(start + 1, len(text)) if text[i].startswith('#')), len(text))
section = text[start:end]
fence = [i for i, l in enumerate(section) if l.startswith('```')]
if len(fence) < 2:
    sys.exit(f"cli_reference: {readme}: no code block in the CLI reference")
doc = forms(section[fence[0] + 1:fence[1]], f'{readme} CLI reference')

# ---- 1. and 2.
for k in sorted(set(gen) - set(doc)):
    errors.append(f"{readme}: command 'warden {k}' is not in the CLI reference")
for k in sorted(set(doc) - set(gen)):
    errors.append(f"{readme}: 'warden {k}' is not a command (warden --help)")
for k in sorted(set(gen) & set(doc)):
    g, d = gen[k], doc[k]
    go = set().union(*(opts(f) for f in g))
    do = set().union(*(opts(f) for f in d))
    for o in sorted(go - do):
        errors.append(f"{readme}: warden {k}: option {o} is not documented")
    for o in sorted(do - go):
        errors.append(f"{readme}: warden {k}: option {o} is documented but not accepted")
    if go == do and sorted(g) != sorted(d):
        errors.append(f"{readme}: warden {k}: usage differs from warden --help:\n"
                      f"  README: {d}\n  warden: {g}")

# ---- 4. options named in the section's text
known = set().union(*(opts(f) for v in gen.values() for f in v)) | {'--help', '--version'}
body = '\n'.join(section[:fence[0]] + section[fence[1] + 1:])
for o in sorted(set(re.findall(r'(?<![\w-])(--[a-z][a-z0-9-]*)', body)) - known):
    errors.append(f"{readme}: the CLI reference mentions {o}, which no command accepts")

for e in errors:
    print("cli_reference: " + e)
ncmd = len(gen)
nopt = sum(len(set().union(*(opts(f) for f in v))) for v in gen.values())
if errors:
    print(f"cli_reference: {len(errors)} problem(s)")
    sys.exit(1)
print(f"cli_reference: README matches the CLI ({ncmd} commands, {nopt} options)")
PYEOF
