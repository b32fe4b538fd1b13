/*
 * help.c -- the `--help` text of every warden command.  The usage lines are
 * SPEC section 5's, word for word, so the help, the README and the parser
 * tell one story; the option lists below them are what the parsers in
 * cmd_*.c accept.
 */
#include "cli.h"

#include <string.h>

static const char main_help[] =
    "usage: warden COMMAND [ARGS]   (warden COMMAND --help for details)\n"
    "\n"
    "  warden init DIR --dim N [--metric cosine|l2|ip] [--config FILE]\n"
    "  warden ingest DIR [FILE ...|-] [--keep-going]\n"
    "  warden ingest DIR META.jsonl --vectors EMB.npy [--keep-going]\n"
    "  warden query DIR --principal P [--groups G1,G2] (--vector JSON | --vector-file F | --text STR)\n"
    "               [-k N] [--filter JSON|@FILE] [--namespace PREFIX ...] [--exact] [--explain]\n"
    "               [--mode semantic|lexical|hybrid]\n"
    "  warden delete DIR DOC_ID ...\n"
    "  warden acl get DIR DOC_ID\n"
    "  warden acl set DIR DOC_ID [--allow P,...] [--deny P,...]\n"
    "  warden acl sync DIR FILE\n"
    "  warden principals set DIR PRINCIPAL --groups G1,G2 | sync DIR FILE | get DIR PRINCIPAL\n"
    "  warden grants add|remove DIR --principal P --prefix URI_PREFIX | list DIR\n"
    "  warden index DIR [--rebuild]\n"
    "  warden stats DIR\n"
    "  warden check DIR\n"
    "  warden export DIR [FILE] [--full]\n"
    /* hardening (issue 13) */
    "  warden import DIR FILE [--trust-config]\n"
    "  warden backup DIR DEST\n"
    "  warden compact DIR\n"
    "\n"
    "Output: one JSON object per line on stdout.  Errors: `warden: CONTEXT: REASON`\n"
    "on stderr.  Exit codes: 0 success, 1 runtime or I/O error, 2 usage error,\n"
    "3 invalid input data.\n"
    "\n"
    "  --help      this text        --version   print the version\n";

static const struct {
  const char *cmd;
  const char *text;
} helps[] = {
    {"init",
     "usage: warden init DIR --dim N [--metric cosine|l2|ip] [--config FILE]\n"
     "\n"
     "Create an empty collection in DIR (created if missing).\n"
     "  --dim N          embedding dimension (required unless --config gives it)\n"
     "  --metric M       cosine (default), l2 or ip\n"
     "  --config FILE    take warden.yaml from FILE; --dim/--metric must agree\n"
     "Prints {\"created\": DIR, \"dimension\": N, \"metric\": M, \"revision\": 0}.\n"},
    {"ingest",
     "usage: warden ingest DIR [FILE ...|-] [--keep-going]\n"
     "       warden ingest DIR META.jsonl --vectors EMB.npy [--keep-going]\n"
     "\n"
     "Upsert JSON Lines documents (one per line) from the FILEs, or standard\n"
     "input when none is given or FILE is '-'.  All inputs form one\n"
     "transaction: a bad line is reported as `FILE:LINE: field: reason` and\n"
     "nothing is committed (exit 3).\n"
     "  --keep-going     commit the good lines; report every bad one (exit 3\n"
     "                   if any was bad)\n"
     "  --vectors F      the embeddings are the rows of F, a 2-D float32 or\n"
     "                   float16 .npy (C order), one row per chunk of META.jsonl\n"
     "                   in file order; META's chunks have text, no embedding.\n"
     "                   Rows and dimension are checked before anything is written\n"
     "Prints {\"documents\", \"replaced\", \"chunks\", \"bad_lines\", \"revision\"}.\n"},
    {"query",
     "usage: warden query DIR --principal P [--groups G1,G2] (--vector JSON | --vector-file F | --text STR)\n"
     "             [-k N] [--filter JSON|@FILE] [--namespace PREFIX ...] [--exact] [--explain]\n"
     "             [--target-recall R]\n"
     "\n"
     "Top-k chunks nearest to the query that principal P may read.\n"
     "  --principal P      the caller (user:NAME or group:NAME); required\n"
     "  --groups G1,G2     groups asserted by the caller's identity provider\n"
     "  --vector JSON      one query embedding, a JSON array of numbers\n"
     "  --vector-file F    one JSON array, or JSON Lines of arrays (a batch:\n"
     "                     one output line per query, in order); '-' = stdin\n"
     "  --text STR         embed STR with the collection's embedder\n"
     "  -k N               results per query (default 10)\n"
     "  --filter JSON|@F   metadata filter (Bedrock or Mongo dialect); @F reads F\n"
     "  --namespace P      namespace prefix; repeatable (any of them matches)\n"
     "  --exact            force the exact scan\n"
     "  --ann              force the ANN index\n"
     "  --explain          add the query plan to the output\n"
     "  --format F         json (default) or bedrock (Bedrock Retrieve shape)\n"
     "  --min-revision R   fail unless the snapshot has at least revision R\n"
     "  --agent P          on behalf of: agent P acts for the principal; a chunk\n"
     "                     is returned only if both may read it\n"
     "  --agent-groups G1,G2  groups asserted for the agent (needs --agent)\n"
     "  --mode M           semantic (default), lexical (BM25 over --text) or hybrid\n"
     "                     (both, fused; --text is also embedded when no --vector\n"
     "                     is given); Bedrock's SEMANTIC / HYBRID are accepted\n"
     "  --target-recall R  recall the ANN search aims for, in (0, 1] (default:\n"
     "                     index.target_recall, 0.95); --explain shows the effort\n"
     "Prints {\"revision\": R, \"results\": [{\"doc_id\", \"chunk\", \"score\", \"text\",\n"
     "\"source\", \"namespace\", \"metadata\"}, ...]} per query; lexical and hybrid\n"
     "hits add \"semantic_rank\" and \"lexical_rank\" (null: not ranked by that side).\n"},
    {"delete",
     "usage: warden delete DIR DOC_ID ...\n"
     "\n"
     "Delete documents with all their chunks.  Unknown ids are counted.\n"
     "Prints {\"deleted\": N, \"unknown\": M, \"revision\": R}.\n"},
    {"acl",
     "usage: warden acl get DIR DOC_ID\n"
     "       warden acl set DIR DOC_ID [--allow P,...] [--deny P,...]\n"
     "       warden acl sync DIR FILE\n"
     "\n"
     "Read or change document ACLs without touching vectors.\n"
     "  get    print {\"doc_id\", \"allow\", \"deny\"}\n"
     "  set    replace the allow and/or deny list (at least one of them;\n"
     "         --allow '' sets an empty list, which means nobody)\n"
     "  sync   apply a JSON Lines file of {\"doc_id\", \"allow\", \"deny\"} in one\n"
     "         transaction; prints {\"changed\", \"unchanged\", \"unknown_doc\",\n"
     "         \"revision\"}\n"},
    {"principals",
     "usage: warden principals set DIR PRINCIPAL --groups G1,G2 | sync DIR FILE | get DIR PRINCIPAL\n"
     "\n"
     "The collection's directory of group memberships.\n"
     "  set    replace PRINCIPAL's groups (--groups '' removes the entry)\n"
     "  sync   apply a JSON Lines file of {\"principal\", \"groups\"}\n"
     "  get    print {\"principal\", \"groups\", \"expanded\"}\n"},
    {"grants",
     "usage: warden grants add|remove DIR --principal P --prefix URI_PREFIX | list DIR\n"
     "\n"
     "Source-permission grants for the `grants` resolver.\n"},
    {"index",
     "usage: warden index DIR [--rebuild]\n"
     "\n"
     "Build (or with --rebuild, rebuild from scratch) the ANN index.\n"},
    {"stats",
     "usage: warden stats DIR\n"
     "\n"
     "Print collection facts: documents, chunks, dimension, metric, revision,\n"
     "index state.\n"},
    {"check",
     "usage: warden check DIR\n"
     "\n"
     "Verify the collection's internal consistency and print a JSON report.\n"
     "Exit 1 when a problem was found.\n"},
    {"export",
     "usage: warden export DIR [FILE] [--full]\n"
     "\n"
     "Write every document as JSON Lines that `warden ingest` reads back\n"
     "unchanged, ordered by doc_id, to FILE (written atomically) or stdout.\n"
     "\n"
     "  --full   a full-fidelity export from one snapshot: configuration,\n"
     "           metadata field types, principals directory, grants and\n"
     "           documents, ended by a record of the counts; `warden import`\n"
     "           reads it back into an identical collection\n"},
    /* hardening (issue 13) */
    {"import",
     "usage: warden import DIR FILE [--trust-config]\n"
     "\n"
     "Create the collection DIR (it must not exist, or be an empty directory)\n"
     "from a full export (`warden export SRC FILE --full`; FILE - = stdin).\n"
     "Nothing is left behind on failure; a truncated file is refused.\n"
     "  --trust-config  accept an export whose warden.yaml names a resolver\n"
     "                  command or an audit.path (refused by default: an\n"
     "                  export file is data, and a command would be run)\n"},
    {"compact",
     "usage: warden compact DIR\n"
     "\n"
     "Reclaim what deleted documents left (zero rows, unused slots, free\n"
     "pages) and shrink the store: the collection is rebuilt from one snapshot\n"
     "and swapped in atomically (a kill at any moment leaves the old or the\n"
     "new collection).  Needs the collection to itself: it fails while another\n"
     "process has it open, and opens wait for it to finish.\n"},
    {"backup",
     "usage: warden backup DIR DEST\n"
     "\n"
     "Copy the collection DIR to the new directory DEST while queries and\n"
     "writes go on: one consistent, compacted snapshot of the store plus\n"
     "warden.yaml and the index file.  DEST opens as a collection.\n"},
};

const char *cli_help_main(void) { return main_help; }

const char *cli_help_text(const char *cmd) {
  for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++)
    if (strcmp(helps[i].cmd, cmd) == 0) return helps[i].text;
  return NULL;
}
